//! COPY FROM STDIN on the mock: after the recorded CopyInResponse the
//! client's CopyData is gathered until CopyDone or CopyFail, and only then
//! is the answer looked up, with the data as part of its key (different
//! data is a miss that names the difference).

use bytes::BytesMut;

use super::Session;
use crate::fixture::{key_values, ErrorFields};
use crate::key;
use crate::replay::{with_param_values, Completion};
use crate::wire::{self, Frontend, WireError};

impl Session<'_> {
    /// A message while COPY FROM STDIN is in progress.
    pub(super) fn copy_message(
        &mut self,
        msg: Frontend,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        match msg {
            Frontend::CopyData(d) => {
                // The data is held whole until CopyDone (it is part of the
                // key), so one COPY is bounded as one message is.
                let limit = self.shared.limits.max_message_size;
                let received = self.copy.as_ref().map_or(0, |c| c.received) + d.len();
                if received > limit {
                    let e = ErrorFields::error(
                        "54000",
                        format!("pgsim: COPY data over {limit} bytes (the maximum message size): the mock holds a COPY's data whole to match it"),
                        None,
                    );
                    return self.copy_refused(&e, out);
                }
                if let Some(c) = &mut self.copy {
                    c.received = received;
                }
                self.proto.copy_data(&d)
            }
            Frontend::CopyDone => self.copy_finished(None, out)?,
            Frontend::CopyFail(m) => self.copy_finished(Some(m), out)?,
            // PostgreSQL ignores Flush and Sync during copy-in.
            Frontend::Flush | Frontend::Sync => {}
            Frontend::Terminate => self.hang_up = true,
            other => {
                let e = ErrorFields::error(
                    "08P01",
                    format!("unexpected message during COPY from stdin: {other:?}"),
                    None,
                );
                self.copy_refused(&e, out)?;
            }
        }
        Ok(())
    }

    /// Ends COPY FROM STDIN with an error, as PostgreSQL does: what the
    /// client still sends of the COPY (CopyData, CopyDone, CopyFail) is
    /// then ignored.
    fn copy_refused(&mut self, e: &ErrorFields, out: &mut BytesMut) -> Result<(), WireError> {
        let simple = self.copy.take().is_some_and(|c| c.simple);
        self.proto.copy_finished(None);
        wire::put_error(out, e.to_wire())?;
        self.proto.failed(!simple);
        if simple {
            self.ready(out)?;
        }
        Ok(())
    }

    fn copy_finished(
        &mut self,
        failed: Option<String>,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        let Some(wait) = self.copy.take() else {
            return Ok(());
        };
        let copy = self.proto.copy_finished(failed);
        let values = key_values(None, Some(&copy));
        let key = with_param_values(&values, |p| key::query_key_normalized(&wait.normalized, p));
        let answer = self.lookup(&key, &wait.sql, &values);
        if wait.simple {
            match answer {
                Ok(answer) => self.put_simple_answer(&wait.sql, answer, out)?,
                Err(e) => {
                    wire::put_error(out, e.to_wire())?;
                    self.proto.failed(false);
                }
            }
            self.proto.synced_quietly();
            return self.ready(out);
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => return self.fail(out, &e),
        };
        answer.put_before(out)?;
        let Some(result) = answer.results.first() else {
            return wire::put_empty_query(out);
        };
        for n in &result.notices {
            wire::put_notice(out, n.to_wire())?;
        }
        match &result.completion {
            Completion::Tag(tag) => {
                wire::put_command_complete(out, tag)?;
                self.proto
                    .completed("", crate::protocol::TxKind::Other, tag);
            }
            Completion::Error(e) => {
                let e = (**e).clone();
                self.fail(out, &e)?;
            }
            Completion::Empty | Completion::Suspended => wire::put_empty_query(out)?,
        }
        self.report(result.after())
    }
}
