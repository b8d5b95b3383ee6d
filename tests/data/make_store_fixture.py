"""Write store-formatN.tar.gz: a small store as the format-N release wrote it.

Run with that release's code first on the path (format 1: commit 7d8579b; format 2:
commit 10a1c84), e.g. for format 1

    git archive 7d8579b src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python tests/data/make_store_fixture.py /tmp/fixture
    (cd /tmp/fixture && tar --owner=0 --group=0 --numeric-owner -czf \
        store-format1.tar.gz store/log/data.mdb store/working_set/data.mdb expected.json)

``expected.json`` holds what that release read back (turns, memories, history), which
tests/test_formats.py compares with what this release reads from the same store.
"""

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

from memory_plugins import MemoryEngine

out = Path(sys.argv[1])
store = out / "store"
shutil.rmtree(out, ignore_errors=True)
start = dt.datetime(2023, 5, 7, 13, 0, tzinfo=dt.UTC)
lines = ["My dog's name is Potola.", "I live in Porto with my sister Ana.",
         "Yesterday I adopted a cat called Miso!", "We went hiking on 2023-05-01 near Gerês.",
         "I work as a nurse at São João hospital.", "🐶 Potola loves the beach 🏖️",
         "What is my dog's name?", "I paid 120 euros for the new bike.",
         "My favourite food is bacalhau.", "Ana is getting married in June."]
users = ("alice", "bob", "çé 用户")
with MemoryEngine(store, embedder="hashing") as e:
    for i in range(60):
        user = users[i % 3]
        e.observe(lines[i % len(lines)] + ("" if i < 10 else f" ({i})"), user_id=user,
                  session_id=f"s{i // 20}", speaker=user.title(),
                  role="user" if i % 2 == 0 else "assistant",
                  timestamp=start + dt.timedelta(days=i, seconds=0.25 * i),
                  metadata={"n": i} if i % 4 == 0 else None)
    m1 = e.add("I am allergic to peanuts.", user_id="alice", metadata={"src": "add"}).id
    m2 = e.add("My car is a blue Fiat.", user_id="bob").id
    e.update(m2, "My car is a red Fiat.")
    m3 = e.add("Temporary note", user_id="alice").id
    e.delete(m3)
    expected = {
        "turns": [[t.id, t.user_id, t.text, t.role, t.speaker, t.session_id, t.timestamp,
                   t.metadata] for u in users for t in e.turns(user_id=u)],
        "memories": {u: sorted([m.id, m.level, m.text, m.type, m.created_at, m.last_reinforced,
                                m.stability_days, list(m.sources), m.metadata]
                               for m in e.memories(user_id=u))
                     for u in users},
        "history": {str(m): [[h.event, h.old_memory, h.new_memory] for h in e.history(m)]
                    for m in (m1, m2, m3)},
    }
(out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=0))
