//! Which recorded answer a connection gets: the recorded sessions it can
//! be (its scope, then what it sent), one shared place in the answers of a
//! pool or a scope, each connection's own place in a single-connection
//! client's, and a miss naming the candidates rather than a guess. The rules
//! are in docs/FIXTURES.md, "Which answer a connection gets".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::{Answer, DatabaseIndex, Queue};
use crate::key::QueryKey;

/// The answers one recorded session holds for one key (a range of its
/// queue), and how many of them have been served.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) session: u32,
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) served: AtomicU32,
}

impl Segment {
    pub(super) fn len(&self) -> u32 {
        self.end - self.start
    }
}

/// Which recorded clients (session groups, see [`SessionMeta::group`])
/// one replayed connection may be, from what it has sent so far (see
/// docs/FIXTURES.md, "Which answer a connection gets"). One per connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Follow {
    /// Sorted group numbers; `None`: any.
    pub(super) groups: Option<Vec<u32>>,
    /// Per queue, how many answers this connection took from it: its own
    /// place in a single-connection client's recording (see
    /// [`SessionMeta::shared`]).
    pub(super) taken: HashMap<u32, u32>,
}

impl Follow {
    fn allows(&self, group: u32) -> bool {
        self.groups
            .as_ref()
            .is_none_or(|g| g.binary_search(&group).is_ok())
    }

    /// Keeps the groups of `these` (sorted) that it allowed. When none is
    /// left, the connection's earlier queries belonged to other clients'
    /// recordings too (identical answers say nothing about who asked): it
    /// follows `these` from now on.
    fn narrow(&mut self, these: &[u32]) {
        // The hot path: the connection already follows only these.
        if let Some(now) = &self.groups {
            if !now.is_empty() && now.iter().all(|g| these.binary_search(g).is_ok()) {
                return;
            }
        }
        let kept: Vec<u32> = match &self.groups {
            Some(now) => now
                .iter()
                .copied()
                .filter(|g| these.binary_search(g).is_ok())
                .collect(),
            None => these.to_vec(),
        };
        self.groups = Some(if kept.is_empty() {
            these.to_vec()
        } else {
            kept
        });
    }
}

/// Who a connection is, for choosing its answers: its `pgsim.scope` and
/// its role (`None`: any role, for a server started with
/// [`any_role`](crate::MockServerBuilder::any_role)).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Who<'a> {
    pub(crate) scope: Option<&'a str>,
    pub(crate) role: Option<&'a str>,
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a Answer),
    /// Nothing recorded for the key in the connection's scope; the scopes
    /// it is recorded in (`None`: no scope), if any.
    Missing(Vec<Option<Arc<str>>>),
    /// Recorded in the connection's scope only by other roles: those.
    OtherRoles(Vec<Arc<str>>),
    /// Recorded sessions the connection may be answer differently, and
    /// nothing tells which it is: the candidates.
    Ambiguous(Vec<&'a Answer>),
}

/// One recorded session (a fixture file's session, split where it changed
/// its `pgsim.scope`).
#[derive(Debug)]
pub(crate) struct SessionMeta {
    pub(crate) scope: Option<Arc<str>>,
    /// The role it was recorded as: only a connection of that role is
    /// answered from it.
    pub(crate) role: Arc<str>,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    /// Sessions of one group were one client: open at the same time (a
    /// pool), or in the same explicit scope. Their answers to one key are
    /// served in recorded order; between groups pgsim never guesses.
    pub(super) group: u32,
    /// Whether the group's answers are shared by every replayed connection
    /// that follows it (a pool, an explicit scope: one cursor, recorded
    /// order), or each connection walks them itself (a single connection
    /// recorded without a scope: clients replayed side by side each get
    /// their own place in it).
    pub(super) shared: bool,
}

impl DatabaseIndex {
    /// The recorded answer for `key` to a connection in `scope` that has
    /// followed `follow` so far; see docs/FIXTURES.md, "Which answer a
    /// connection gets".
    pub(crate) fn answer(&self, key: &QueryKey, who: Who<'_>, follow: &mut Follow) -> Lookup<'_> {
        let scope = who.scope;
        let Some(queue) = self
            .index
            .get(key)
            .and_then(|&i| self.queues.get(i as usize))
        else {
            return Lookup::Missing(Vec::new());
        };
        let answers = queue.answers.as_slice();
        let in_scope = |session: u32| {
            self.sessions.get(session as usize).is_some_and(|s| {
                s.scope.as_deref() == scope && who.role.is_none_or(|r| *s.role == *r)
            })
        };
        if queue.uniform {
            let Some(first) = answers.first() else {
                return Lookup::Missing(Vec::new());
            };
            if !in_scope(first.session) {
                return self.missing(answers, scope);
            }
            let i = queue.served.fetch_add(1, Ordering::Relaxed) as usize;
            if i >= answers.len() {
                // Drained: park the cursor so it can never wrap around.
                queue.served.store(answers.len() as u32, Ordering::Relaxed);
            }
            let Some(answer) = answers.get(i).or(answers.last()) else {
                return Lookup::Missing(Vec::new());
            };
            match answers {
                [one] => follow.narrow(&[self.group_of(one.session)]),
                // A key every client sent says little; only a connection
                // already following some is narrowed by it.
                _ if follow.groups.is_some() => follow.narrow(queue.groups()),
                _ => {}
            }
            answer.mark_used();
            return Lookup::Found(answer);
        }
        // Several sessions answer differently: a few tries, in case another
        // connection takes the same answer at the same moment.
        let q = self.index.get(key).copied().unwrap_or(0);
        for _ in 0..8 {
            match self.pick(queue, q, &in_scope, follow) {
                Pick::Take {
                    segment,
                    at,
                    shared,
                } => {
                    if shared
                        && segment
                            .served
                            .compare_exchange(at, at + 1, Ordering::Relaxed, Ordering::Relaxed)
                            .is_err()
                    {
                        continue;
                    }
                    *follow.taken.entry(q).or_insert(0) += 1;
                    let Some(answer) = answers.get((segment.start + at) as usize) else {
                        return Lookup::Missing(Vec::new());
                    };
                    answer.mark_used();
                    return Lookup::Found(answer);
                }
                Pick::Missing => return self.missing(answers, scope),
                Pick::Ambiguous(candidates) => return Lookup::Ambiguous(candidates),
            }
        }
        Lookup::Ambiguous(Vec::new())
    }

    fn group_of(&self, session: u32) -> u32 {
        self.sessions.get(session as usize).map_or(0, |m| m.group)
    }

    fn is_shared(&self, session: u32) -> bool {
        self.sessions
            .get(session as usize)
            .is_some_and(|m| m.shared)
    }

    /// The choice among the sessions that hold the key of queue `q`.
    fn pick<'q>(
        &self,
        queue: &'q Queue,
        q: u32,
        in_scope: &dyn Fn(u32) -> bool,
        follow: &mut Follow,
    ) -> Pick<'q> {
        let answers = queue.answers.as_slice();
        let scoped: Vec<&Segment> = queue
            .segments()
            .iter()
            .filter(|s| in_scope(s.session))
            .collect();
        if scoped.is_empty() {
            return Pick::Missing;
        }
        let followed: Vec<&Segment> = scoped
            .iter()
            .copied()
            .filter(|s| follow.allows(self.group_of(s.session)))
            .collect();
        let taken = follow.taken.get(&q).copied().unwrap_or(0);
        // Where each session is: the shared cursor of a pool or scope, or
        // this connection's own count for a single-connection client.
        let place = |s: &Segment| {
            if self.is_shared(s.session) {
                s.served.load(Ordering::Relaxed)
            } else {
                taken
            }
        };
        let fresh = |set: &[&'q Segment]| -> Vec<(&'q Segment, u32)> {
            set.iter()
                .filter_map(|s| {
                    let at = place(s);
                    (at < s.len()).then_some((*s, at))
                })
                .collect()
        };
        let mut candidates = fresh(&followed);
        if candidates.is_empty() {
            candidates = fresh(&scoped);
        }
        let repeat = candidates.is_empty();
        if repeat {
            // Everything was served: each session's last answer repeats.
            let from = if followed.is_empty() {
                &scoped
            } else {
                &followed
            };
            candidates = from.iter().map(|s| (*s, s.len() - 1)).collect();
        }
        let answer_of = |(s, i): &(&Segment, u32)| answers.get((s.start + i) as usize);
        let Some(first) = candidates.first().and_then(answer_of) else {
            return Pick::Missing;
        };
        let same = candidates
            .iter()
            .filter_map(answer_of)
            .all(|a| Arc::ptr_eq(a, first) || a.same_as(first));
        let first_group = self.group_of(candidates[0].0.session);
        let one_group = candidates
            .iter()
            .all(|(s, _)| self.group_of(s.session) == first_group);
        if !same && !one_group {
            return Pick::Ambiguous(
                candidates
                    .iter()
                    .filter_map(answer_of)
                    .map(|a| &**a)
                    .collect(),
            );
        }
        // One client's answers come in recorded order: the earliest
        // waiting, or the latest when they all repeat.
        let by_seq = |c: &&(&Segment, u32)| answer_of(c).map_or(0, |a| a.origin.seq);
        let chosen = if repeat {
            candidates.iter().max_by_key(by_seq)
        } else {
            candidates.iter().min_by_key(by_seq)
        };
        let Some(&(segment, at)) = chosen else {
            return Pick::Missing;
        };
        let mut groups: Vec<u32> = candidates
            .iter()
            .map(|(s, _)| self.group_of(s.session))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        follow.narrow(&groups);
        Pick::Take {
            segment,
            at,
            shared: !repeat && self.is_shared(segment.session),
        }
    }

    /// Why none of `answers` is for a connection in `scope`: recorded in
    /// that scope by other roles only, or in other scopes.
    fn missing(&self, answers: &[Arc<Answer>], scope: Option<&str>) -> Lookup<'_> {
        let mut roles: Vec<Arc<str>> = answers
            .iter()
            .filter_map(|a| self.sessions.get(a.session as usize))
            .filter(|s| s.scope.as_deref() == scope)
            .map(|s| Arc::clone(&s.role))
            .collect();
        if roles.is_empty() {
            return Lookup::Missing(self.scopes_of(answers));
        }
        roles.sort();
        roles.dedup();
        Lookup::OtherRoles(roles)
    }

    /// The scopes the answers were recorded in, for a miss's explanation.
    fn scopes_of(&self, answers: &[Arc<Answer>]) -> Vec<Option<Arc<str>>> {
        let mut scopes: Vec<Option<Arc<str>>> = answers
            .iter()
            .filter_map(|a| self.sessions.get(a.session as usize))
            .map(|s| s.scope.clone())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

/// What [`DatabaseIndex::pick`] chose.
enum Pick<'q> {
    /// Serve answer `at` of a segment; from a shared session, only if no
    /// other connection took it meanwhile.
    Take {
        segment: &'q Segment,
        at: u32,
        shared: bool,
    },
    Missing,
    Ambiguous(Vec<&'q Answer>),
}
