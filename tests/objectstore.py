"""A real S3 API on loopback for the tests: the ``moto`` server, in its own process.

Started once per test session (:func:`tests.conftest.s3_server`); each test gets
a bucket of its own.  The environment points every S3 client at it the standard
way (``AWS_ENDPOINT_URL``), and the local work areas of object-store archives
(``DWA_WORK_DIR``) go to a folder of the session.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

from tests import ports

START_TIMEOUT = 20.0


def die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


@dataclass
class MotoServer:
    """A moto S3 server on ``endpoint``."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.endpoint)

    def bucket(self, prefix: str = "test") -> str:
        """A new empty bucket's name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def publish(self, bucket: str, prefix: str) -> None:
        """Let anyone read the archive's ``studies/`` (the policy deploy/README.md gives)."""
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}/studies/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))  # type: ignore[attr-defined]


def environment(endpoint: str, work: Path) -> dict[str, str]:
    """What S3 clients and ``dwa`` read: the endpoint, dummy credentials, the work root."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DWA_WORK_DIR": str(work),
    }


@contextlib.contextmanager
def moto_server(work: Path) -> Iterator[MotoServer]:
    """Start ``moto_server`` on a free loopback port, set the environment, stop it after.

    It takes a free port itself (``-p 0``) and says which (``Running on URL``):
    no other process can take the port between a probe and its bind.
    """
    server = Path(sys.executable).with_name("moto_server")
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", "0"],
        stdout=output,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,  # never outlives a test run that was killed
    )
    said = functools.partial(ports.written, output)
    saved: dict[str, str | None] = {}
    try:
        endpoint = ports.announced(r"Running on (http://127\.0\.0\.1:\d+)", process, said)[1]
        saved = {name: os.environ.get(name) for name in environment(endpoint, work)}
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    failed = f"moto_server did not answer on {endpoint}:\n{said()}"
                    raise RuntimeError(failed) from None
                time.sleep(0.1)
        os.environ.update(environment(endpoint, work))
        yield MotoServer(endpoint, process)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
