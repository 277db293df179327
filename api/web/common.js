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
    const sentence = error.message_zh && LANG === "zh" ? error.message_zh : error.message;
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
