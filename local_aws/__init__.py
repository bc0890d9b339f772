"""Local stand-ins for AWS, over real protocols: moto's server and a Lambda Runtime API.

Used by the tests, the demo and the benchmarks; never by the library.
"""
