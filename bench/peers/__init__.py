"""Peers: one adapter per library, behind one small interface (:class:`base.Peer`)."""
from .base import Peer, Skip  # noqa: F401
