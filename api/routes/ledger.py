"""What a hospital client or an auditor needs to know about the ledger: the EIP-712 domain."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import LedgerReadsDep
from chain.model import DOMAIN_NAME, DOMAIN_VERSION
from verifier.canonical import INVOICE_TYPE

router = APIRouter(prefix="/ledger", tags=["ledger"])


class LedgerInfo(BaseModel):
    backend: str
    chain_id: int
    contract: str
    authority: str
    domain_name: str
    domain_version: str
    invoice_type: str


@router.get("", response_model=LedgerInfo)
def ledger_info(ledger: LedgerReadsDep) -> LedgerInfo:
    """The chain and contract every invoice signature is bound to (EIP-712 domain)."""
    identity = ledger.identity()
    return LedgerInfo(
        backend=identity.backend,
        chain_id=identity.chain_id,
        contract=identity.contract,
        authority=identity.authority,
        domain_name=DOMAIN_NAME,
        domain_version=DOMAIN_VERSION,
        invoice_type=INVOICE_TYPE,
    )
