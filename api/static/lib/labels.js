/*
 * Display names the staff pages share, defined once. tests/test_static.py keeps them in step with the Python side:
 * the section kinds are those of `Chunk.section_kind` (kb_service/models.py), and a heading kind's label is its
 * standard heading (the first name in ingest/headings.py SECTION_SYNONYMS); the channels are the store's
 * `Channel`s; the stages are the keys of a search's `timings_ms`.
 */

export const KIND_LABELS = {
  scenario: '适用场景',
  steps: '处理步骤',
  script: '标准话术',
  time_limit: '时限要求',
  notes: '注意事项',
  escalation: '升级处理',
  faq: '常见问题',
  plain: '普通小节',
  overview: '概览',
  qa: '问答',
  examples: '示例问法',
  expansion: '租客常见说法',
};

/** Search channels in display order (hit test columns). */
export const CHANNEL_LABELS = {
  dense: '整体语义',
  sent: '句子语义',
  lex: '关键词',
  py: '拼音',
};

export const STAGE_LABELS = {
  embed: '查询向量化',
  lexical: '关键词/拼音编码',
  qdrant: '向量检索与融合',
  group: '按 SOP 归组',
  confidence: '置信度',
  explain: '各通道单独检索（解释）',
  learned: '学到的问法',
};

/** What a recorded SOP version was. */
export const ACTION_LABELS = { import: '导入（文件夹原版）', publish: '发布', rollback: '回滚', delete: '删除' };

/** Who recorded a version: `system` for the folder's own version (kb ingest), else the account that published. */
export const authorLabel = (author) => (author === 'system' ? '系统（SOP 文件夹导入）' : author);

export const kindLabel = (kind) => KIND_LABELS[kind] || kind;

/** Account roles (`kb users add --role`), as every staff page shows them. */
export const ROLE_LABELS = { agent: '坐席', trainer: '培训师', admin: '管理员', service: '服务密钥', trial: '试用' };

export const roleLabel = (role) => ROLE_LABELS[role] || role;
