// Shared by every page: language (Chinese by default, English on request), API calls that turn
// errors into sentences, money in yuan from integer fen.
"use strict";
const I18N = {
  zh: {
    title: "医疗费用零星报销", citizen: "参保人", audit: "查验与审计", signIn: "登录",
    idNumber: "身份证号", password: "密码", signOut: "退出", myInvoices: "我的票据",
    hospital: "医院", date: "日期", amount: "金额", status: "状态", claim: "一键报销",
    claimPhoto: "拍照报销", myClaims: "我的报销", state: "进度", paid: "已支付",
    verify: "查验", qrText: "二维码内容", photo: "照片", billCode: "票据代码",
    billNumber: "票据号码", checkCode: "校验码", valid: "有效", invalid: "无效",
    anchored: "已上链", pending: "待上链", voided: "已作废", explain: "计算说明",
    language: "English", nothing: "暂无", verifications: "查验次数",
    states: { submitted: "已提交", verified: "已核验", adjudicated: "已核算", in_review: "人工审核中",
              approved: "审核通过", settling: "结算中", settled: "已结算", paid: "已支付", rejected: "不予报销" },
  },
  en: {
    title: "One-tap medical reimbursement", citizen: "Citizen", audit: "Verify & audit",
    signIn: "Sign in", idNumber: "ID number", password: "Password", signOut: "Sign out",
    myInvoices: "My invoices", hospital: "Hospital", date: "Date", amount: "Amount",
    status: "Status", claim: "Claim", claimPhoto: "Claim by photo", myClaims: "My claims",
    state: "Progress", paid: "Paid", verify: "Verify", qrText: "QR text", photo: "Photo",
    billCode: "Bill code", billNumber: "Bill number", checkCode: "Check code", valid: "VALID",
    invalid: "INVALID", anchored: "anchored", pending: "pending", voided: "voided",
    explain: "How it was computed", language: "中文", nothing: "None yet",
    verifications: "verifications",
    states: { submitted: "submitted", verified: "verified", adjudicated: "adjudicated",
              in_review: "in review", approved: "approved", settling: "settling",
              settled: "settled", paid: "paid", rejected: "rejected" },
  },
};
// Chinese sentences for the API's stable error codes (the API answers in English).
const ERRORS_ZH = {
  sign_in_refused: "身份证号或密码不正确", not_signed_in: "请先登录",
  duplicate_claim: "该票据已向此机构申请过报销，不能重复申请", invoice_not_found: "未找到您的这张票据",
  basic_first: "请先向基本医疗保险申请报销，待其支付或作出决定后再向其他机构申请",
  rate_limited: "查验过于频繁，请稍后再试", api_key_missing: "请填写接口密钥", api_key_invalid: "接口密钥无效",
  staff_token_invalid: "令牌无效", role_not_allowed: "此令牌无权进行该操作", not_your_payer: "只能处理本支付方的理赔", reason_required: "驳回需要填写理由", image_missing: "请选择照片",
  invalid_request: "填写的内容格式不正确", invalid_csv: "CSV 文件无法读取",
  not_in_review: "该报销不在审核中", invoice_voided: "该票据已作废",
  invalid_void_signature: "红冲签名无效：须由开票医院当前有效的密钥签名",
  invoice_already_paid: "该票据已有报销支付，不能红冲", wrong_hospital: "只能操作本院票据",
  claim_not_found: "未找到该报销", unknown_payer: "没有这个报销机构", citizen_not_found: "未找到该参保人",
  image_too_large: "照片太大", invoice_not_anchored: "票据尚未上链，请稍后再试",
};
let LANG = localStorage.getItem("lang") || "zh";
function t(key) { return I18N[LANG][key] ?? key; }
function applyLanguage() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-ph]").forEach((el) => { el.placeholder = t(el.dataset.ph); });
}
function toggleLanguage() {
  LANG = LANG === "zh" ? "en" : "zh";
  localStorage.setItem("lang", LANG);
  applyLanguage();
  if (window.rerender) window.rerender();
}
function yuan(fen) {
  const sign = fen < 0 ? "-" : "";
  fen = Math.abs(fen);
  return `${sign}¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
}
async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const error = (body && body.error) || {};
    const zh = error.message_zh || ERRORS_ZH[error.code];
    const sentence = LANG === "zh" && zh ? zh : error.message;
    throw new Error(sentence || `${response.status} ${response.statusText}`);
  }
  return body;
}
function showError(where, error) {
  const box = document.getElementById(where);
  box.textContent = error.message;
  box.hidden = false;
}
function clearError(where) { document.getElementById(where).hidden = true; }
