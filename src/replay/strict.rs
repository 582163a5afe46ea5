//! Strict order (opt-in, `MockServerBuilder::strict_order`, `pgsim serve
//! --strict-order`): each connection must send exactly the sequence of a
//! recorded session, and the first query that deviates is reported with
//! both sequences instead of being answered from elsewhere.

use std::sync::Arc;

use super::{Answer, DatabaseIndex};
use crate::key::QueryKey;

/// How many of a connection's own queries a deviation report shows.
const SHOWN: usize = 5;

/// One step of a recorded session: the queue of its key, and its answer.
type Step = (u32, Arc<Answer>);

/// Every recorded session of a database as the queries it sent, in order.
/// Built on the first strict lookup.
#[derive(Debug)]
pub(crate) struct Sequences {
    sessions: Vec<Box<[Step]>>,
}

impl Sequences {
    pub(super) fn build(db: &DatabaseIndex) -> Sequences {
        let mut by_file: std::collections::BTreeMap<Arc<str>, Vec<(u64, Step)>> =
            std::collections::BTreeMap::new();
        for (qi, q) in db.queues.iter().enumerate() {
            for a in q.answers.as_slice() {
                by_file
                    .entry(Arc::clone(&a.origin.file))
                    .or_default()
                    .push((a.origin.seq, (qi as u32, Arc::clone(a))));
            }
        }
        let sessions = by_file
            .into_values()
            .map(|mut steps| {
                steps.sort_by_key(|(seq, _)| *seq);
                steps.into_iter().map(|(_, step)| step).collect()
            })
            .collect();
        Sequences { sessions }
    }
}

/// Where one connection is in the recorded sessions it may be replaying.
#[derive(Debug, Default)]
pub(crate) struct StrictFollow {
    /// (session, next step); `None` before the first query: all at 0.
    at: Option<Vec<(usize, usize)>>,
    /// The SQL this connection sent, latest last (a few).
    sent: std::collections::VecDeque<String>,
}

impl DatabaseIndex {
    /// The answer to `key` (sent as `sql`) if it is what a recorded session
    /// this connection has followed so far sends next.
    pub(crate) fn answer_strictly(
        &self,
        key: &QueryKey,
        sql: &str,
        follow: &mut StrictFollow,
    ) -> Result<&Answer, String> {
        let seqs = self.sequences.get_or_init(|| Sequences::build(self));
        let queue = self.index.get(key).copied();
        let at = follow
            .at
            .get_or_insert_with(|| (0..seqs.sessions.len()).map(|s| (s, 0)).collect());
        let step = |(s, i): &(usize, usize)| seqs.sessions.get(*s).and_then(|steps| steps.get(*i));
        let next: Vec<(usize, usize)> = at
            .iter()
            .copied()
            .filter(|c| step(c).is_some_and(|(q, _)| Some(*q) == queue))
            .collect();
        if next.is_empty() {
            let expected: Vec<String> = at
                .iter()
                .take(SHOWN)
                .map(|c| match step(c) {
                    Some((_, a)) => format!(
                        "{}#{} {:?}",
                        a.origin.file,
                        a.origin.seq,
                        short(&a.origin.sql)
                    ),
                    None => "the end of its recording".to_owned(),
                })
                .collect();
            let sent: Vec<String> = follow
                .sent
                .iter()
                .map(|s| format!("{:?}", short(s)))
                .collect();
            return Err(format!(
                "strict order: {:?} is not what the recorded session sends next. Recorded next: {}. This connection sent before it: {}.",
                short(sql),
                if expected.is_empty() { "nothing (no session recorded)".to_owned() } else { expected.join("; ") },
                if sent.is_empty() { "nothing".to_owned() } else { sent.join(", ") }
            ));
        }
        let answers: Vec<&Arc<Answer>> = next
            .iter()
            .filter_map(|c| step(c).map(|(_, a)| a))
            .collect();
        let Some(first) = answers.first() else {
            return Err("strict order: no recorded step".into());
        };
        if !answers
            .iter()
            .all(|a| Arc::ptr_eq(a, first) || a.same_as(first))
        {
            let listed: Vec<String> = answers
                .iter()
                .map(|a| format!("{}#{}", a.origin.file, a.origin.seq))
                .collect();
            return Err(format!(
                "strict order: recorded sessions with the same queries so far answer {:?} differently: {}",
                short(sql),
                listed.join("; ")
            ));
        }
        *at = next.into_iter().map(|(s, i)| (s, i + 1)).collect();
        follow.sent.push_back(sql.to_owned());
        if follow.sent.len() > SHOWN {
            follow.sent.pop_front();
        }
        first.mark_used();
        Ok(first)
    }
}

fn short(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 {
        format!("{}...", flat.chars().take(77).collect::<String>())
    } else {
        flat
    }
}
