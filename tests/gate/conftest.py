"""gate.store.Base holds every table the migrations create only once the modules defining them are imported: the
accounts, tokens and sessions of `facegate serve` live in service/ (gate must not import it)."""

from __future__ import annotations

import service.accounts  # noqa: F401  (registers admin_accounts and api_tokens on gate.store.Base)
import service.sessions  # noqa: F401  (registers admin_sessions)
