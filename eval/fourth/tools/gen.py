import json, re, glob, os, sys
sys.path.insert(0, os.path.dirname(__file__))
import q1, q2, q3, q4
from collections import Counter
Q = q1.Q; OOS = q4.OOS
base = '/tmp/s38/fourth'
# parse SOP front matter and headings
docs = {}
for f in sorted(glob.glob(base+'/sops/*.md')):
    t = open(f, encoding='utf-8').read()
    fm = t.split('---')[1]
    id_ = re.search(r'^id:\s*(\S+)', fm, re.M).group(1)
    aud = re.search(r'^audience:\s*(\S+)', fm, re.M).group(1)
    heads = [m.group(2).strip() for m in re.finditer(r'^(##+)\s+(.+)$', t, re.M)]
    docs[id_] = dict(aud=aud, heads=heads, file=os.path.basename(f))
DISTRACTORS = {
 'bj-heating-fee':'bj-heating-not-warm','bj-compound-water-outage':'bj-pipe-burst-flooding',
 'bj-planned-power-outage':'bj-night-power-out','bj-renovation-crew-noise':'bj-noise-complaint',
 'bj-gas-safety-inspection':'bj-gas-smell','bj-boiler-annual-maintenance':'bj-wall-boiler',
 'bj-fire-facility-inspection':'bj-fire-smoke','bj-smart-lock-maintenance':'bj-door-lock',
 'bj-renewal-reminder':'bj-lease-renewal','bj-rent-monthly-service':'bj-rent-payment',
 'bj-corridor-cleaning':'bj-cleaning','bj-seasonal-pest':'bj-pest-control',
 'bj-stray-animals':'bj-pets','bj-tax-housing-docs':'bj-invoice','bj-staff-praise':'bj-staff-complaint'}
mains = set(docs) - set(DISTRACTORS)
assert len(mains) == 30 and len(DISTRACTORS) == 15 and set(DISTRACTORS) <= set(docs), (len(mains), len(DISTRACTORS))
assert set(DISTRACTORS.values()) <= mains
err = 0
seen = set()
with open(base+'/queries.jsonl','w',encoding='utf-8') as fq, open(base+'/answers.jsonl','w',encoding='utf-8') as fa:
    for sop, kind, q, passages in Q:
        if q in seen: print('DUP', q); err += 1
        seen.add(q)
        if sop not in mains: print('NOT MAIN', sop); err += 1
        aud = 'public' if kind == 'public_question' else 'agent'
        if kind == 'public_question':
            if docs[sop]['aud'] != 'public': print('NOT PUBLIC', sop, q); err += 1
            for p in passages:
                if p not in docs[sop]['heads']: print('NO PASSAGE', sop, p); err += 1
            fa.write(json.dumps({'query': q, 'sop_id': sop, 'passages': passages}, ensure_ascii=False)+'\n')
        fq.write(json.dumps({'query': q, 'expected': [sop], 'audience': aud, 'kind': kind}, ensure_ascii=False)+'\n')
with open(base+'/out_of_scope.jsonl','w',encoding='utf-8') as fo:
    for kind, q in OOS:
        fo.write(json.dumps({'query': q, 'kind': kind}, ensure_ascii=False)+'\n')
print('queries', len(Q), Counter(k for _,k,_,_ in Q))
print('per sop', sorted(Counter(s for s,_,_,_ in Q).values()))
print('oos', len(OOS), Counter(k for k,_ in OOS))
print('public docs', sorted(i for i,d in docs.items() if d['aud']=='public'))
print('errors', err)
