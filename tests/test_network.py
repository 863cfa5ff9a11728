"""Tests run offline: the session guard of tests/conftest.py refuses every outside connection."""

import socket

import pytest
from conftest import NetworkBlocked


def test_an_outside_connection_fails_at_once():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


def test_a_name_lookup_fails_at_once():
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("pypi.org", 443)


def test_loopback_is_left_alone():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close()
    finally:
        server.close()
