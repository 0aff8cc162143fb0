// Chinese by default, English on request (the toggle in the status bar); the choice is
// kept on the phone.

const zh = {
  appName: "经销商同步", today: "今天", customers: "客户", stock: "库存", forecast: "预测", conflicts: "冲突",
  online: "在线", offline: "离线", lastSync: "上次同步", never: "从未", unacked: "未确认", pending: "条改动未送达总部",
  allSaved: "已全部送达总部", conflictsWaiting: "个冲突待处理", closedMonth: "条在已关账的月份（总部不再接收，请告知经理）",
  enrolTitle: "登记这部手机", enrolHint: "输入经理给您的一次性登录码（或扫描二维码打开链接）。",
  code: "登录码", enrol: "登记", tokenInstead: "改用令牌（管理员）", token: "令牌",
  enrolFailed: "登记失败", needNetwork: "第一次登记需要网络。",
  followUps: "待跟进", followUpsNone: "没有待跟进的客户。", daysAgo: "天未联系",
  month: "本月", week: "本周", target: "目标", visits: "到店", calls: "电话", testDrives: "试驾", orders: "订单",
  units: "交车", revenue: "收入", noTarget: "未设目标",
  search: "搜索姓名或电话", add: "新增", walkIn: "到店", callIn: "来电", callOut: "去电", roadshow: "巡展",
  referral: "转介绍", noPhone: "未留电话（只记到店）", partySize: "人数", name: "姓名", phone: "电话",
  model: "意向车型", none: "无", note: "备注", when: "发生时间", save: "保存", cancel: "取消",
  record: "记录", status: "状态", events: "跟进记录", sell: "卖车", reserve: "预订", release: "取消预订", deliver: "交车",
  vin: "车架号 (VIN)", price: "成交价（元）", customer: "客户", chooseCustomer: "选择客户",
  walkInSaved: "已记录到店（未留电话）", saved: "已保存", refused: "未保存", byModel: "按车型", allStatuses: "全部",
  forecastFor: "下月预测", deadline: "截止日", submitted: "已提交", quantity: "台数",
  conflictsNone: "没有冲突。", doubleSale: "同一辆车卖给了两位客户", duplicateCustomer: "同一位客户录入了两次",
  giveTo: "归给", keep: "保留", mergeInto: "并入", resolved: "已处理", signOut: "退出登记",
  list: "标价", merged: "已合并", mine: "我的", vehicleFor: "为该客户", sellHint: "在库车辆可直接卖出（预订与成交一步完成）。",
  lead: "线索", test_drive: "试驾", negotiating: "洽谈", ordered: "已订", delivered: "已交车", lost: "流失",
  ordered_v: "已下单", in_transit: "在途", in_stock: "在库", reserved: "已预订", sold: "已售", delivered_v: "已交车", transferred_out: "已调出",
  visit: "到店", call: "电话", quote: "报价", order: "订单", delivery: "交车", follow_up: "回访", complaint: "投诉",
  referral_e: "转介绍", survey: "回访评分", amount: "金额（元）", direction: "方向", inbound: "来电", outbound: "去电",
  walk_in: "到店", phone_s: "电话", roadshow_s: "巡展", referral_s: "转介绍", web: "网络", event: "活动",
  loading: "正在打开数据…", notOnPhone: "这部手机上还没有数据，连网后会自动载入。", waitingForRelay: "正在从服务器载入数据（网络较慢，请稍候）…", by: "录入", stockEmpty: "没有车辆。",
  conflictExplainSale: "两部设备离线时各自卖出了这辆车。请选择最终买家：", conflictExplainDup: "这两位客户电话相同。请选择保留哪一位：",
  unknownModel: "未知车型", notSubmitted: "未提交", lastContact: "最近联系", kind: "类型", soldFor: "卖出", entered: "录入于", eventsCount: "条记录",
  complaints: "投诉", newComplaint: "记录投诉", summary: "投诉内容", owner: "负责人", resolution: "处理结果", update: "更新",
  open_c: "待处理", in_progress_c: "处理中", resolved_c: "已解决", referredBy: "推荐人", referredOthers: "推荐的客户",
  followUp: "回访", nextFollowUp: "下次回访", surveyTitle: "满意度回访", score: "评分（1–5）",
  discountTitle: "折扣申请", discountAmount: "折扣（元）", requestDiscount: "申请折扣", discount_request_d: "待经理批准",
  discount_approved_d: "已批准", discount_refused_d: "已拒绝", approve: "批准", refuse: "拒绝",
  manager: "经理", approvals: "折扣审批", openComplaints: "未结投诉",
  transferOut: "跨区调车申请", toSite: "调往", requestTransfer: "提交总部审批", transfersMine: "本店调车申请",
  awaitingHq: "待总部批准", hqApproved: "总部已批准", hqRefused: "总部已拒绝", dispatched: "已发车",
  incoming: "调入车辆", receive: "登记在途", arrivals: "待到货", arrive: "到货", nothing: "无。", eta: "预计到达",
  referrerHint: "谁介绍来的（以老带新）", chooseVehicle: "选择车辆",
  scanVin: "扫描车架号", scanTitle: "扫描车架号条码", scanAim: "把相机对准车架号条码（前挡风玻璃下或车门柱上）",
  daysInStock: "库龄（天）", slowMover: "滞销",
  area: "客户区域", areaUnknown: "未填", prefecture: "地州", city: "市区",
  lostTitle: "客户流失", lostReason: "流失原因", competitor: "买了哪家（竞品，可不填）", markLost: "标记为流失",
  lostInfo: "流失", lostReasons: "价格,车型配置,贷款未批,买了竞品,暂不购车,联系不上",
  scanNotVin: "读到的不是有效车架号，继续扫描", scanTimeout: "没有读到车架号，请手动输入", cameraFailed: "无法打开相机，请手动输入车架号",
}
type Key = keyof typeof zh

const en: Record<Key, string> = {
  appName: "DealerSync", today: "Today", customers: "Customers", stock: "Stock", forecast: "Forecast", conflicts: "Conflicts",
  online: "Online", offline: "Offline", lastSync: "Last sync", never: "never", unacked: "Not acknowledged", pending: "changes not yet at head office",
  allSaved: "everything reached head office", conflictsWaiting: "conflicts waiting", closedMonth: "of them in a closed month (head office no longer takes them; tell your manager)",
  enrolTitle: "Enrol this phone", enrolHint: "Type the one-time sign-in code your manager gave you (or scan the QR code to open the link).",
  code: "Sign-in code", enrol: "Enrol", tokenInstead: "Use a token instead (admin)", token: "Token",
  enrolFailed: "Enrolment failed", needNetwork: "The first enrolment needs a network.",
  followUps: "Follow-ups due", followUpsNone: "No customer is waiting for a follow-up.", daysAgo: "days without contact",
  month: "This month", week: "This week", target: "Target", visits: "Visits", calls: "Calls", testDrives: "Test drives", orders: "Orders",
  units: "Units", revenue: "Revenue", noTarget: "no target",
  search: "Search name or phone", add: "Add", walkIn: "Walk-in", callIn: "Call in", callOut: "Call out", roadshow: "Roadshow",
  referral: "Referral", noPhone: "No phone given (visit only)", partySize: "People", name: "Name", phone: "Phone",
  model: "Model of interest", none: "none", note: "Note", when: "When it happened", save: "Save", cancel: "Cancel",
  record: "Record", status: "Status", events: "History", sell: "Sell", reserve: "Reserve", release: "Release", deliver: "Deliver",
  vin: "VIN", price: "Price (yuan)", customer: "Customer", chooseCustomer: "Choose a customer",
  walkInSaved: "Walk-in recorded (no phone)", saved: "Saved", refused: "Not saved", byModel: "By model", allStatuses: "All",
  forecastFor: "Forecast for next month", deadline: "Deadline", submitted: "Submitted", quantity: "Units",
  conflictsNone: "No conflicts.", doubleSale: "One vehicle sold to two customers", duplicateCustomer: "One customer entered twice",
  giveTo: "Give to", keep: "Keep", mergeInto: "merge into", resolved: "Resolved", signOut: "Sign out",
  list: "List", merged: "merged", mine: "Mine", vehicleFor: "for this customer", sellHint: "A vehicle in stock is sold in one step (reserved and sold together).",
  lead: "Lead", test_drive: "Test drive", negotiating: "Negotiating", ordered: "Ordered", delivered: "Delivered", lost: "Lost",
  ordered_v: "On order", in_transit: "In transit", in_stock: "In stock", reserved: "Reserved", sold: "Sold", delivered_v: "Delivered", transferred_out: "Transferred",
  visit: "Visit", call: "Call", quote: "Quote", order: "Order", delivery: "Delivery", follow_up: "Follow-up", complaint: "Complaint",
  referral_e: "Referral", survey: "Survey", amount: "Amount (yuan)", direction: "Direction", inbound: "Inbound", outbound: "Outbound",
  walk_in: "Walk-in", phone_s: "Phone", roadshow_s: "Roadshow", referral_s: "Referral", web: "Web", event: "Event",
  loading: "Opening the data…", notOnPhone: "No data on this phone yet; it loads as soon as the phone is online.", waitingForRelay: "Loading the data from the relay (slow network, please wait)…", by: "by", stockEmpty: "No vehicles.",
  conflictExplainSale: "Two devices sold this vehicle while offline. Choose the buyer:", conflictExplainDup: "These customers have the same phone. Choose the one to keep:",
  unknownModel: "unknown model", notSubmitted: "not submitted", lastContact: "Last contact", kind: "Kind", soldFor: "sold for", entered: "entered", eventsCount: "events",
  complaints: "Complaints", newComplaint: "Record a complaint", summary: "What it is about", owner: "Owner", resolution: "Resolution", update: "Update",
  open_c: "Open", in_progress_c: "In progress", resolved_c: "Resolved", referredBy: "Referred by", referredOthers: "Referred",
  followUp: "Follow-up", nextFollowUp: "Next follow-up", surveyTitle: "Satisfaction survey", score: "Score (1–5)",
  discountTitle: "Discount request", discountAmount: "Discount (yuan)", requestDiscount: "Request discount", discount_request_d: "waiting for a manager",
  discount_approved_d: "approved", discount_refused_d: "refused", approve: "Approve", refuse: "Refuse",
  manager: "Manager", approvals: "Discount approvals", openComplaints: "Open complaints",
  transferOut: "Transfer to another region", toSite: "To site", requestTransfer: "Ask head office", transfersMine: "This site's transfer requests",
  awaitingHq: "waiting for head office", hqApproved: "approved by head office", hqRefused: "refused by head office", dispatched: "dispatched",
  incoming: "Incoming transfers", receive: "Put on the books", arrivals: "Arriving", arrive: "Arrived", nothing: "None.", eta: "ETA",
  referrerHint: "Who referred them", chooseVehicle: "Choose a vehicle",
  scanVin: "Scan the VIN", scanTitle: "Scan the VIN barcode", scanAim: "Point the camera at the VIN barcode (under the windscreen or on the door pillar)",
  daysInStock: "days in stock", slowMover: "slow mover",
  area: "Area", areaUnknown: "not set", prefecture: "Prefecture", city: "City",
  lostTitle: "Customer lost", lostReason: "Why", competitor: "Bought from (competitor, optional)", markLost: "Mark lost",
  lostInfo: "Lost", lostReasons: "Price,Model or trim,Loan refused,Bought a competitor,Not buying now,Unreachable",
  scanNotVin: "Not a valid VIN, still looking", scanTimeout: "No VIN read; type it in", cameraFailed: "The camera could not be opened; type the VIN",
}

let lang: "zh" | "en" = localStorage.getItem("dealersync.lang") === "en" ? "en" : "zh"

/** The current language. */
export function language(): "zh" | "en" {
  return lang
}

/** Switches language and remembers it. */
export function setLanguage(l: "zh" | "en") {
  lang = l
  localStorage.setItem("dealersync.lang", l)
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en"
}

/** A UI string. */
export function t(key: Key): string {
  return (lang === "zh" ? zh : en)[key]
}

/** A label for a stored enum value (status, kind, source), falling back to the value. */
export function label(value: string, suffix: "" | "_v" | "_s" | "_e" | "_c" | "_d" = ""): string {
  const d = (lang === "zh" ? zh : en) as Record<string, string>
  return d[value + suffix] ?? d[value] ?? value
}

export type { Key }
