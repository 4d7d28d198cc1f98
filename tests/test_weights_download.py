"""The FaceNet weights download: a failure says why, and never leaves a partial file."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest

from facecluster.encoders import facenet_paths
from facecluster.errors import ModelUnavailable


class _Response(io.BytesIO):
    def __init__(self, body: bytes, length: int) -> None:
        super().__init__(body)
        self.headers = {"Content-Length": str(length)}


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACECLUSTER_OFFLINE", raising=False)


def test_a_failed_download_says_why(online, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(ModelUnavailable) as err:
        facenet_paths.weights_for("facenet-vggface2", "vggface2")
    msg = str(err.value)
    assert "20180402-114759-vggface2.pt" in msg and "--weights" in msg
    assert "name resolution" in msg and "URLError" in msg and "\n" not in msg


def test_a_short_download_leaves_no_file(online, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"x" * 10, 100))
    with pytest.raises(ModelUnavailable, match="stopped after 10 of 100 bytes"):
        facenet_paths.weights_for("facenet-vggface2", "vggface2")
    folder = facenet_paths.cache_path("vggface2").parent
    assert list(folder.iterdir()) == []  # neither the weights' name nor a .part file


def test_a_complete_download_takes_the_cache_name(online, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"w" * 64, 64))
    path = facenet_paths.weights_for("facenet-vggface2", "vggface2")
    assert path == facenet_paths.cache_path("vggface2") and path.read_bytes() == b"w" * 64
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_offline_does_not_try(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACECLUSTER_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", pytest.fail)
    with pytest.raises(ModelUnavailable, match="weights not found"):
        facenet_paths.weights_for("facenet-vggface2", "vggface2")
