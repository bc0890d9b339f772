"""The article's synchronous handler, re-implemented faithfully as the baseline users start from.

Kept as the article wrote it: group and stream are set up in `__init__` (DescribeLogStreams, then
CreateLogGroup/CreateLogStream/PutRetentionPolicy as needed) and `emit` makes one blocking
PutLogEvents call per record on the caller's thread, sleeping 3 s and resending once on a
ClientError. The sequence-token dance is kept too: AWS has ignored tokens since January 2023, so it
is harmless, and it is part of what each call costs. Only the runtime import of the
`mypy_boto3_logs` stubs is left out (the typed dicts it built are plain dicts at runtime).
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from typing import Any, Literal

import boto3

LogGroupRetentionDaysType = (
    Literal[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
        2192, 2557, 2922, 3288, 3653,
    ]
    | None
)  # fmt: skip


class ArticleCloudWatchLogsHandler(logging.Handler):
    """Send every record with its own PutLogEvents call, on the caller's thread."""

    def __init__(
        self,
        log_group: str | None = None,
        *,
        log_stream: str | None = None,
        ttl: LogGroupRetentionDaysType = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        profile: str | None = None,
    ) -> None:
        """Resolve names and client, then create group and stream as the article does."""
        self._log_group = self._resolve_log_group(log_group)
        self._log_stream = self._resolve_log_stream(log_stream)
        self.client = self._resolve_client(profile, access_key, secret_key, region)
        self._next_sequence_token: str | None = None
        self._resolve_resources(ttl)
        logging.Handler.__init__(self)

    @property
    def log_group_name(self) -> str:
        """The group this handler writes to."""
        return self._log_group

    @property
    def log_stream_name(self) -> str:
        """The stream this handler writes to."""
        return self._log_stream

    @staticmethod
    def _resolve_log_group(log_group: str | None) -> str:
        if log_group is None:
            raise ValueError("Log Group name is required.")
        return log_group

    @staticmethod
    def _resolve_log_stream(log_stream: str | None) -> str:
        if log_stream is None:
            # The article uses utcnow(); the same instant, without the deprecated call.
            now = datetime.datetime.now(datetime.timezone.utc)
            return f"stream/{now:%Y/%m/%d/%H%M}/{uuid.uuid4()}"
        return log_stream

    @staticmethod
    def _resolve_client(
        profile: str | None, access_key: str | None, secret_key: str | None, region: str | None
    ) -> Any:
        if profile is not None:
            return boto3.Session(profile_name=profile).client("logs")
        if access_key is None and secret_key is None and region is None:
            return boto3.client("logs")
        if access_key is None:
            return boto3.client("logs", region_name=region)
        session = boto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        return session.client("logs")

    def _resolve_resources(self, ttl: LogGroupRetentionDaysType) -> None:
        try:
            response = self.client.describe_log_streams(logGroupName=self._log_group)
            for each_log_stream in response["logStreams"]:
                if each_log_stream["logStreamName"] == self._log_stream:
                    self._next_sequence_token = each_log_stream.get("uploadSequenceToken")
            if self._next_sequence_token is None:
                self.client.create_log_stream(
                    logGroupName=self._log_group, logStreamName=self._log_stream
                )
        except self.client.exceptions.ResourceNotFoundException:
            self.client.create_log_group(logGroupName=self._log_group)
            self.client.create_log_stream(
                logGroupName=self._log_group, logStreamName=self._log_stream
            )
            if ttl is not None:
                self.client.put_retention_policy(logGroupName=self._log_group, retentionInDays=ttl)
        except self.client.exceptions.ResourceAlreadyExistsException:
            pass

    def send_log(self, timestamp: int, message: str) -> None:
        """Make one PutLogEvents call carrying one event, and keep the token it returns."""
        log_event = {"timestamp": timestamp, "message": message}
        if self._next_sequence_token is not None:
            response = self.client.put_log_events(
                logGroupName=self._log_group,
                logStreamName=self._log_stream,
                sequenceToken=self._next_sequence_token,
                logEvents=[log_event],
            )
        else:
            response = self.client.put_log_events(
                logGroupName=self._log_group,
                logStreamName=self._log_stream,
                logEvents=[log_event],
            )
        # The article indexes the key; AWS may omit it now that tokens are ignored.
        self._next_sequence_token = response.get("nextSequenceToken")

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and send it now, blocking the caller until AWS answers."""
        timestamp = round(time.time() * 1000)
        message = self.format(record)
        try:
            self.send_log(timestamp, message)
        except self.client.exceptions.DataAlreadyAcceptedException as e:
            e_str = str(e)
            self._next_sequence_token = e_str[e_str.find("sequenceToken: ") + 15 :]
        except self.client.exceptions.InvalidSequenceTokenException as e:
            e_str = str(e)
            self._next_sequence_token = e_str[e_str.find("sequenceToken is: ") + 18 :]
            self.send_log(timestamp, message)
        except self.client.exceptions.ClientError:
            time.sleep(3)
            self.send_log(timestamp, message)
