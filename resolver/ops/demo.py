"""The demo data set of ``idres serve --demo``: a prefix of sample washing machines and its admin."""

from __future__ import annotations

from registry.model import Handle, HandleValue, Record, ValueRef
from registry.permissions import AdminGrant, AdminPermission
from registry.pg.store import Store
from registry.values import ADMIN, admin_to_bytes

from ..keys.keyring import Keyring
from ..keys.site import SiteDescription
from .provisioning import ADMIN_GROUP_INDEX, PREFIX_ADMIN_INDEX, SECKEY_INDEX, AdminIdentity, create_prefix_admin, home_prefix

DEMO_PREFIX = "88.101.5"


async def seed_demo(store: Store, site: SiteDescription, now: int, count: int = 5000, keyring: Keyring | None = None) -> AdminIdentity:
    """Home the demo prefix with ``count`` sample product identifiers and an admin; idempotent."""
    await home_prefix(store, site, DEMO_PREFIX, now, keyring)
    admin_handle = Handle.parse(f"{DEMO_PREFIX}/ADMIN")
    existing = await store.get(admin_handle.key)
    if existing is None:
        admin = await create_prefix_admin(store, DEMO_PREFIX, now)
    else:
        key = existing.record.value_at(SECKEY_INDEX)
        admin = AdminIdentity(ValueRef(SECKEY_INDEX, admin_handle.text), key.data.decode() if key else "")
    total, _ = await store.list_handles(DEMO_PREFIX, limit=0)
    if total <= 1:
        await store.bulk_create(demo_record(n, now) for n in range(1, count + 1))
    return admin


def demo_record(n: int, now: int) -> Record:
    """A sample product identifier: a product page, a model, a batch and a production date."""
    handle = Handle.parse(f"{DEMO_PREFIX}/SN-{n:06d}")
    admin = AdminGrant(ValueRef(ADMIN_GROUP_INDEX, f"0.NA/{DEMO_PREFIX}"), AdminPermission.from_bits("011111110011"))
    values = (
        HandleValue(1, "URL", f"https://products.example.com/washers/SN-{n:06d}".encode(), timestamp=now),
        HandleValue(2, "MODEL", f"WM-{700 + n % 5}0".encode(), timestamp=now),
        HandleValue(3, "BATCH", f"B2026-{n // 500:03d}".encode(), timestamp=now),
        HandleValue(4, "PRODUCTION_DATE", f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}".encode(), timestamp=now),
        HandleValue(PREFIX_ADMIN_INDEX, ADMIN, admin_to_bytes(admin), timestamp=now),
    )
    return Record(handle, values)
