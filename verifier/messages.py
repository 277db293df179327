"""Human sentences for the verifier's stable machine codes, in Chinese and English.

Codes are part of the API: clients branch on them; the sentences may be reworded. Each
template is formatted with the step's details (``str.format`` fields).
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    # decode
    "decoded": ("已识别二维码", "QR code read"),
    "text_given": ("已提供二维码文本", "QR text provided"),
    "no_qr_found": (
        "图片中未找到可识别的二维码，请重新拍摄：对准二维码、保持清晰、光线充足",
        "No readable QR code in the picture: photograph the code again, in focus and well lit",
    ),
    "image_unreadable": ("无法读取图片：{reason}", "The image cannot be read: {reason}"),
    "several_qr_codes": (
        "图片中有多个二维码，请只拍摄一张票据",
        "The picture holds several QR codes: photograph one invoice at a time",
    ),
    # parse
    "parsed_signed": (
        "二维码为本系统签名票据指纹（版本 {version}）",
        "The code is a signed invoice fingerprint (version {version})",
    ),
    "parsed_pointer": (
        "二维码为财政电子票据查验码（{form}）",
        "The code is a fiscal e-bill pointer ({form} form)",
    ),
    "parsed_reference": ("按票据代码和号码查验", "Checking by bill code and number"),
    "qr_malformed": ("二维码内容格式错误：{reason}", "The QR content is malformed: {reason}"),
    "tax_invoice_qr": (
        "这是{invoice_zh}的二维码，不是医疗电子票据，不能在此报销",
        "This is the QR code of {invoice_en}, not of a medical e-bill: it cannot be claimed here",
    ),
    "qr_unsupported_version": ("不支持的二维码版本 {version}", "Unsupported QR version {version}"),
    "qr_wrong_prefix": ("不是医疗票据二维码", "This is not a medical invoice QR code"),
    "qr_too_long": (
        "二维码内容过长（{length} 字符）",
        "The QR content is too long ({length} characters)",
    ),
    # canonicalise
    "canonicalised": ("已计算票据标识与记录哈希", "Invoice id and record hash computed"),
    "domain_mismatch": (
        "该票据签名针对其他链或合约（链 {chain_id}，合约 {contract}），疑为重放",
        "The signature is for another chain or contract (chain {chain_id}, "
        "contract {contract}): a replay",
    ),
    # signature
    "signature_recovered": ("签名有效，签名密钥 {signer}", "Signature valid, made by key {signer}"),
    "signature_invalid": ("签名无效：{reason}", "The signature is invalid: {reason}"),
    "no_signature": (
        "查验码不含签名，以链上记录为准",
        "A pointer code carries no signature: the ledger record decides",
    ),
    # registry
    "key_valid": (
        "签名密钥属于 {hospital}，开票时有效",
        "The key belongs to {hospital} and was valid at the issue time",
    ),
    "key_not_valid": ("签名密钥无效：{reason}", "The signing key is not valid: {reason}"),
    "key_revoked_before_anchoring": (
        "签名密钥 {signer} 已被吊销，该票据在吊销登记之后才上链（第 {leaf_index} 条，"
        "吊销时账本共 {revoked_log_size} 条），无论开票时间如何均无效",
        "The key {signer} was revoked and this invoice was anchored only after the "
        "revocation was recorded (leaf {leaf_index}; the log held {revoked_log_size} then): "
        "invalid whatever its issue time",
    ),
    # inclusion
    "included": (
        "票据已上链：第 {leaf_index} 条，检查点 {checkpoint_size}，链上根哈希一致",
        "Anchored: leaf {leaf_index} of checkpoint {checkpoint_size}, root matches the chain",
    ),
    "invoice_unknown": ("账本中没有这张票据", "The ledger has no such invoice"),
    "not_anchored": (
        "票据已接收但尚未上链，请稍后再查",
        "The invoice is received but not anchored yet: check again shortly",
    ),
    "checkpoint_unknown": (
        "链上没有检查点 {checkpoint_size}",
        "No checkpoint {checkpoint_size} on chain",
    ),
    "inclusion_failed": (
        "上链证明与链上根哈希不符",
        "The inclusion proof does not match the root on chain",
    ),
    # record
    "record_matches": ("二维码信息与链上记录一致", "The QR fields match the anchored record"),
    "record_mismatch": (
        "二维码信息与链上记录不符：{fields}",
        "The QR fields differ from the anchored record: {fields}",
    ),
    # status
    "status_ok": (
        "状态正常：已报销 {paid} 分，可报销余额 {claimable} 分",
        "Status: {paid} fen reimbursed, {claimable} fen still claimable",
    ),
    "status_locked": (
        "状态：审核中（{locked_by} 锁定），已报销 {paid} 分",
        "Status: under review (locked by {locked_by}), {paid} fen reimbursed",
    ),
    "voided": ("票据已红冲作废", "The invoice was voided (red-letter reversal)"),
    # not run
    "offline": ("离线查验：无法核对{what}", "Offline: cannot check {what}"),
    "not_run": ("前一步失败，未执行", "Not run: an earlier step failed"),
    "not_applicable": ("不适用", "Not applicable"),
}


def sentence(code: str, details: dict[str, Any]) -> tuple[str, str]:
    """The (Chinese, English) sentence of a code, formatted with its details."""
    zh, en = MESSAGES[code]
    safe = {k: ("" if v is None else v) for k, v in details.items()}
    try:
        return zh.format(**safe), en.format(**safe)
    except (KeyError, IndexError):
        return zh, en
