"""A real S3 API on loopback for the tests: the ``moto`` server, in its own process.

Started once per test session (:func:`tests.conftest.s3_server`); each test gets
a bucket of its own.  The environment points every S3 client at it the standard
way (``AWS_ENDPOINT_URL``), and the local work areas of object-store archives
(``DWA_WORK_DIR``) go to a folder of the session.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

START_TIMEOUT = 20.0


def die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    """Start ``moto_server`` on a free loopback port, set the environment, stop it after."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = Path(sys.executable).with_name("moto_server")
    command = [str(server), "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # never outlives a test run that was killed
    )
    saved = {name: os.environ.get(name) for name in environment(endpoint, work)}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {endpoint}") from None
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
