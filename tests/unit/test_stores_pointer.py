"""Line edits of npmrc and .condarc: the setting replaced or appended, everything else kept,
and a .condarc the line edit cannot handle refused rather than mangled."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trustwall.errors import StoreError
from trustwall.stores.conda import CondaStore
from trustwall.stores.npm import NpmStore

B = "/etc/ssl/certs/ca-certificates.crt"


def test_npmrc_cafile_replaced_in_place_or_appended() -> None:
    store = NpmStore(Path("/"), Path("/nonexistent/npmrc"))
    text = "registry=https://r.example/\n cafile = '/old.pem'\nstrict-ssl=true"
    assert store.rewritten(text, B) == f"registry=https://r.example/\ncafile={B}\nstrict-ssl=true\n"
    assert store.rewritten("save-exact=true", B) == f"save-exact=true\ncafile={B}\n"
    assert store.rewritten(store.rewritten("", B), B) == f"cafile={B}\n"


def test_condarc_ssl_verify_set_and_other_keys_kept() -> None:
    store = CondaStore(Path("/"), Path("/nonexistent/.condarc"))
    out = store.rewritten("channels: [defaults]\nssl_verify: true  # on\n", B)
    assert yaml.safe_load(out) == {"channels": ["defaults"], "ssl_verify": B}
    assert yaml.safe_load(store.rewritten("", B)) == {"ssl_verify": B}


def test_condarc_only_the_top_level_key_counts_and_a_block_value_is_refused() -> None:
    store = CondaStore(Path("/"), Path("/nonexistent/.condarc"))
    nested = yaml.safe_load(store.rewritten("proxy:\n  ssl_verify: false\n", B))
    assert nested == {"proxy": {"ssl_verify": False}, "ssl_verify": B}
    with pytest.raises(StoreError, match="line edit"):
        store.rewritten("ssl_verify:\n  /opt/corp.pem\n", B)
