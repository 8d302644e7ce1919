/* Trainer workspace: documents (edit the exact file, preview, publish, delete, history, diff, rollback), hit test,
   gap report. Each part is its own module; this one wires them up and shows what the key allows. */

import { initKeyBar } from '../lib/keybar.js';
import { initAccounts, loadAccounts, setAccountsUser } from './accounts.js';
import { initDocs, loadList, renderHeader } from './docs.js';
import { initDrills } from './drills.js';
import { initGaps, loadGaps } from './gaps.js';
import { initHistory } from './history.js';
import { initHitTest } from './hittest.js';
import { initLint } from './lint.js';
import { initPreview } from './preview.js';
import { initPublish } from './publish.js';
import { initService, loadService } from './service.js';
import { state, ui } from './state.js';
import { currentTab, initTabs, showTab } from './tabs.js';
import { initTraining, loadTraining } from './training.js';

/** What the banner says about the presented key ('' when it is a trainer's). */
function roleText(info) {
  if (info.error === 'invalid') return 'API 密钥无效，请检查后重新输入。';
  if (info.error) return info.message || '无法连接知识库服务';
  if (!info.auth) {
    return '本地试用模式（未启用认证）：所有请求按坐席身份处理。查看原文、发布、历史、预览和缺口报告需要培训师密钥：运行 kb users add 姓名 --role trainer，把打印的密钥填到右上角（试用模式随即结束）；命中测试可用。';
  }
  if (info.role === 'trainer') return '';
  return info.role === 'agent'
    ? '当前是坐席密钥：只能浏览文档列表。查看原文、预览、发布、历史、命中测试和缺口报告需要培训师密钥。'
    : '未设置 API 密钥：请在右上角输入培训师密钥。';
}

const keyBar = initKeyBar({
  messages: { missing: '未设置 API 密钥' },
  onRole: (info) => {
    state.role = info.error ? null : info.role;
    state.company = info.error ? '' : info.company || '';
    state.name = info.error ? '' : info.name || ''; // whose version a publish whose answer was lost made
    renderHeader(); // the buttons a trainer's key enables
    state.auth = info.error ? true : info.auth;
    const text = roleText(info);
    ui.banner.textContent = text;
    ui.banner.className = info.error ? 'role-banner error' : 'role-banner';
    ui.banner.hidden = !text;
    document.querySelector('#tab-accounts').hidden = !info.admin;
    setAccountsUser(info.error ? null : info.name);
    loadList();
    if (state.gapsLoaded && currentTab() === 'gaps') loadGaps();
    if (currentTab() === 'training') loadTraining();
    if (currentTab() === 'service') loadService();
    if (currentTab() === 'accounts' && info.admin) loadAccounts();
  },
});

initTabs();
initDocs();
initLint();
initHistory();
initDrills();
initPreview();
initPublish();
initHitTest();
initGaps();
initTraining();
initService();
initAccounts();

renderHeader();
showTab(location.hash.slice(1) || 'docs', { updateHash: false });
keyBar.check();
