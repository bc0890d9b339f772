"""Benchmarks: this handler side by side with watchtower, the article's handler and two floors.

`python -m bench.run` starts one moto server on 127.0.0.1 (moto's application served with
keep-alive, as CloudWatch Logs serves: `local_aws.keep_alive_moto`), runs every contender in its
own process (`bench.worker`), and writes a table, the raw figures (JSON) and pictures (PNG).
"""
