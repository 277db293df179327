"""Stable reason codes with the Chinese and English sentences a citizen reads.

Codes never change once published (the api and the ledger's settlement records refer to them);
the sentences may be reworded. Each sentence is a ``str.format`` template over named values that
adjudication fills in already formatted (yuan, percentages, dates).
"""

from __future__ import annotations

from dataclasses import dataclass

from claims.model import HospitalLevel, ItemClass, Scheme, Share, TillChannel
from claims.policy_model import Coverage

# Outcome codes: the one reason an adjudication ends as it does.
PAID = "paid"
DEADLINE_PASSED = "deadline_passed"
NOT_ELIGIBLE = "not_eligible"
NOTHING_IN_SCOPE = "nothing_in_scope"
NOTHING_LEFT = "nothing_left"
BELOW_DEDUCTIBLE = "below_deductible"
ZERO_RATIO = "zero_ratio"
CAP_REACHED = "cap_reached"
SCHEME_NOT_SERVED = "scheme_not_served"
SETTLED_AT_TILL = "settled_at_till"

OUTCOMES = frozenset(
    {
        PAID,
        SCHEME_NOT_SERVED,
        SETTLED_AT_TILL,
        DEADLINE_PASSED,
        NOT_ELIGIBLE,
        NOTHING_IN_SCOPE,
        NOTHING_LEFT,
        BELOW_DEDUCTIBLE,
        ZERO_RATIO,
        CAP_REACHED,
    }
)

TEMPLATES: dict[str, tuple[str, str]] = {
    # outcomes
    PAID: ("{payer_zh}支付 {amount} 元。", "{payer_en} pays CNY {amount}."),
    DEADLINE_PASSED: (
        "已超过申报期限：须在开票日（{issue_date}）起 {days} 天内、即 {last_day} 前申报，"
        "申报日为 {claim_date}，不予支付。",
        "Rejected: claims must be made within {days} days of the issue date ({issue_date}), "
        "by {last_day}; this claim was made on {claim_date}.",
    ),
    NOT_ELIGIBLE: (
        "不符合{payer_zh}的享受条件（须具备以下身份之一：{flags}），不予支付。",
        "Rejected: {payer_en} covers only citizens with one of: {flags}.",
    ),
    NOTHING_IN_SCOPE: (
        "本票据没有{payer_zh}支付范围内的费用，支付 0 元。",
        "Nothing on this invoice is covered by {payer_en}; it pays CNY 0.00.",
    ),
    NOTHING_LEFT: (
        "此前的支付方已付清{payer_zh}可支付的部分，支付 0 元。",
        "Earlier payers already paid what {payer_en} could cover; it pays CNY 0.00.",
    ),
    BELOW_DEDUCTIBLE: (
        "可支付费用未超过起付线（起付标准），本次支付 0 元，已计入本年累计。",
        "The covered amount does not exceed the deductible (threshold); it pays CNY 0.00 "
        "and the amount counts towards this year's deductible.",
    ),
    ZERO_RATIO: (
        "该类就诊的支付比例为 0，支付 0 元。",
        "The reimbursement ratio for this visit is 0%; it pays CNY 0.00.",
    ),
    CAP_REACHED: (
        "本年度{payer_zh}最高支付限额已用完，支付 0 元。",
        "This year's cap of {payer_en} is used up; it pays CNY 0.00.",
    ),
    SCHEME_NOT_SERVED: (
        "{payer_zh}不支付{patients_zh}的费用（本支付方支付：{served_zh}），不予支付。",
        "Rejected: {payer_en} does not cover {patients_en} (it covers: {served_en}).",
    ),
    SETTLED_AT_TILL: (
        "{channel_zh}已在医院结算时支付 {paid} 元，{payer_zh}不再重复支付，支付 0 元。",
        "{channel_en} already paid CNY {paid} at the hospital's till; {payer_en} does not pay "
        "this invoice again; it pays CNY 0.00.",
    ),
    # steps
    "scheme": (
        "参保类型：{scheme_zh}，按{payer_zh}的规定计算。",
        "Insurance scheme: {scheme_en}; the rules of {payer_en} for it apply.",
    ),
    "till": (
        "医院结算：统筹基金支付 {fund} 元，个人账户支付 {account} 元，其他支付 {other} 元，"
        "个人现金支付 {cash} 元，合计 {total} 元；其中个人自付 {copay} 元，"
        "个人自负 {deductible} 元，个人自费 {self_pay} 元。结算时已支付的 {paid_at_till} 元"
        "不再支付，各支付方报销合计不超过个人现金支付的 {cash} 元。",
        "At the till: pooled fund CNY {fund}, personal account {account}, other funds {other}, "
        "personal cash {cash}, total {total}; the patient's shares: co-payment {copay}, "
        "below-deductible share {deductible}, self-pay {self_pay}. The {paid_at_till} paid at "
        "the till is not paid again; claims together reimburse at most the {cash} paid in cash.",
    ),
    "share": (
        "{share_zh} {amount} 元：个人账户已支付 {account} 元，此前报销 {earlier} 元，"
        "个人现金尚未报销 {left} 元，{coverage_zh}。",
        "{share_en} CNY {amount}: {account} paid from the personal account, {earlier} "
        "reimbursed by earlier payers, {left} paid in cash and not reimbursed yet; "
        "{coverage_en}.",
    ),
    "earlier_payers_till": (
        "医院结算时已支付 {at_till} 元，此前各支付方已报销 {paid} 元，个人现金尚未报销 {left} 元；"
        "本支付方计算基数：政策范围内 {base} 元，目录外 {out_base} 元。",
        "CNY {at_till} was paid at the till and {paid} by earlier payers; {left} paid in cash "
        "is not reimbursed yet; this payer's base: in policy {base}, out of policy {out_base}.",
    ),
    "remainder_cash": (
        "报销额不超过个人现金支付中尚未报销的 {left} 元，本次减少 {cut} 元。",
        "A claim never pays beyond the cash not reimbursed yet (CNY {left}); cut by {cut}.",
    ),
    "deadline_ok": (
        "申报期限：开票日 {issue_date}，{days} 天内（最迟 {last_day}）可申报，申报日 {claim_date}，"
        "在期限内。",
        "Deadline: issued {issue_date}, claimable for {days} days (until {last_day}); "
        "claimed {claim_date}, in time.",
    ),
    "eligible": (
        "享受条件：具备{flags}身份，符合{payer_zh}条件。",
        "Eligibility: the citizen is {flags}, which {payer_en} covers.",
    ),
    "category": (
        "{class_zh}：合计 {amount} 元，计入政策范围 {in_policy} 元，乙类先行自付 {share} 元，"
        "目录外计付 {out_of_policy} 元，不予支付 {excluded} 元。",
        "Class {class_en}: total CNY {amount}; in policy {in_policy}, class-B self-pay share "
        "{share}, out of policy {out_of_policy}, not covered {excluded}.",
    ),
    "line_in_policy": (
        "第 {line} 行 {name}（{class_zh}）{amount} 元全部计入政策范围。",
        "Line {line} {name} (class {class_en}): CNY {amount} counted in full.",
    ),
    "line_self_pay_share": (
        "第 {line} 行 {name}（{class_zh}）{amount} 元：先行自付 {share_ratio} 即 {share} 元，"
        "计入政策范围 {counted} 元。",
        "Line {line} {name} (class {class_en}): CNY {amount}; the citizen first pays "
        "{share_ratio} ({share}), {counted} is counted.",
    ),
    "line_out_of_policy": (
        "第 {line} 行 {name}（{class_zh}）{amount} 元为目录外费用，按目录外比例计付。",
        "Line {line} {name} (class {class_en}): CNY {amount} is out of policy and paid at the "
        "out-of-policy ratio.",
    ),
    "line_excluded": (
        "第 {line} 行 {name}（{class_zh}）{amount} 元不在支付范围内，由个人负担。",
        "Line {line} {name} (class {class_en}): CNY {amount} is not covered; the citizen pays it.",
    ),
    "earlier_payers": (
        "此前各支付方已支付 {paid} 元，剩余未支付 {left} 元；本支付方计算基数：政策范围内 "
        "{base} 元，目录外 {out_base} 元。",
        "Earlier payers paid CNY {paid}, {left} is left; this payer's base: in policy {base}, "
        "out of policy {out_base}.",
    ),
    "deductible": (
        "起付线（起付标准）{deductible} 元，本年已累计 {used} 元，本次计入 {applied} 元，"
        "超过起付线的费用 {payable} 元。",
        "Deductible (threshold) CNY {deductible}: {used} already met this year, {applied} met "
        "by this claim; {payable} is above it.",
    ),
    "ratio": (
        "{level_zh}支付比例 {ratio}：{payable} 元 × {ratio} = {paid} 元（四舍五入到分）。",
        "Ratio at a {level_en} hospital {ratio}: CNY {payable} × {ratio} = {paid} "
        "(rounded half up to the fen).",
    ),
    "ratio_flat": (
        "支付比例 {ratio}：{payable} 元 × {ratio} = {paid} 元（四舍五入到分）。",
        "Ratio {ratio}: CNY {payable} × {ratio} = {paid} (rounded half up to the fen).",
    ),
    "out_of_policy_ratio": (
        "目录外费用支付比例 {ratio}：{payable} 元 × {ratio} = {paid} 元（四舍五入到分）。",
        "Out-of-policy ratio {ratio}: CNY {payable} × {ratio} = {paid} "
        "(rounded half up to the fen).",
    ),
    "cap": (
        "{cap_zh} {cap} 元，本年已支付 {used} 元，尚余 {left} 元，本次支付减少 {cut} 元。",
        "{cap_en} CNY {cap}: {used} paid this year, {left} left; this payment is cut by {cut}.",
    ),
    "remainder": (
        "支付额不超过票据尚未支付的 {left} 元，本次减少 {cut} 元。",
        "A payment never exceeds what is left unpaid on the invoice (CNY {left}); cut by {cut}.",
    ),
}

CLASS_ZH = {
    ItemClass.A: "甲类",
    ItemClass.B: "乙类",
    ItemClass.C: "丙类",
    ItemClass.SELF_PAY: "自费",
}
CLASS_EN = {
    ItemClass.A: "A",
    ItemClass.B: "B",
    ItemClass.C: "C",
    ItemClass.SELF_PAY: "self-pay",
}
SHARE_ZH = {
    Share.COPAY: "个人自付",
    Share.DEDUCTIBLE: "个人自负",
    Share.SELF_PAY: "个人自费",
}
SHARE_EN = {
    Share.COPAY: "Co-payment",
    Share.DEDUCTIBLE: "Below-deductible share",
    Share.SELF_PAY: "Self-pay",
}
COVERAGE_ZH = {
    Coverage.IN_POLICY: "按支付比例计付",
    Coverage.OUT_OF_POLICY: "按目录外比例计付",
    Coverage.EXCLUDED: "不在本支付方支付范围内",
}
COVERAGE_EN = {
    Coverage.IN_POLICY: "counted at the ratio",
    Coverage.OUT_OF_POLICY: "counted at the out-of-policy ratio",
    Coverage.EXCLUDED: "not covered by this payer",
}
SCHEME_ZH = {
    Scheme.EMPLOYEE: "职工基本医疗保险",
    Scheme.RESIDENT: "城乡居民基本医疗保险",
    Scheme.NONE: "未参加基本医疗保险（自费就医）",
}
SCHEME_EN = {
    Scheme.EMPLOYEE: "employees' basic medical insurance",
    Scheme.RESIDENT: "residents' basic medical insurance",
    Scheme.NONE: "none (not insured, paid as a self-pay patient)",
}
PATIENTS_ZH = {
    Scheme.EMPLOYEE: "职工基本医疗保险参保人员",
    Scheme.RESIDENT: "城乡居民基本医疗保险参保人员",
    Scheme.NONE: "未参加基本医疗保险的人员",
}
PATIENTS_EN = {
    Scheme.EMPLOYEE: "members of the employees' basic medical insurance",
    Scheme.RESIDENT: "members of the residents' basic medical insurance",
    Scheme.NONE: "patients without basic medical insurance",
}
CHANNEL_ZH = {
    TillChannel.FUND: "统筹基金",
    TillChannel.OTHER: "其他基金（大病保险、医疗救助等）",
}
CHANNEL_EN = {
    TillChannel.FUND: "The pooled fund",
    TillChannel.OTHER: "Other funds (critical-illness insurance, medical assistance, ...)",
}
LEVEL_ZH = {
    HospitalLevel.TOWNSHIP: "乡镇（社区）医疗机构",
    HospitalLevel.PRIMARY: "一级医院",
    HospitalLevel.SECONDARY: "二级医院",
    HospitalLevel.TERTIARY: "三级医院",
}
LEVEL_EN = {
    HospitalLevel.TOWNSHIP: "township",
    HospitalLevel.PRIMARY: "primary",
    HospitalLevel.SECONDARY: "secondary",
    HospitalLevel.TERTIARY: "tertiary",
}


@dataclass(frozen=True, slots=True)
class Note:
    """One explained fact: a stable code and the sentence in Chinese and English."""

    code: str
    zh: str
    en: str


def note(code: str, **values: object) -> Note:
    """The sentence of ``code`` with ``values`` filled in (KeyError for an unknown code)."""
    zh, en = TEMPLATES[code]
    return Note(code, zh.format(**values), en.format(**values))
