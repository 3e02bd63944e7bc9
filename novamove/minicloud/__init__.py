"""The minicloud: a real Nova control plane on loopback (see manager.py)."""

from novamove.minicloud.manager import Minicloud, MinicloudError, default_state_dir

__all__ = ["Minicloud", "MinicloudError", "default_state_dir"]
