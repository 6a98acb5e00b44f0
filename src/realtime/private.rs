//! Private channels: who may read (join) or write (broadcast, presence) a topic is decided by
//! policies on `realtime.messages`, as in Supabase (`realtime.topic()` is the channel's name).

use crate::app::AppState;
use crate::policy::context::RequestContext;
use crate::policy::predicate::{self, Command};
use std::sync::Arc;

/// The table policies on `realtime.messages` are kept on.
pub const MESSAGES: &str = "_outpost_realtime_messages";

/// Whether `ctx` may read (`write == false`: SELECT) or write (INSERT) the channel `topic` for
/// `extension` (`broadcast` or `presence`).
pub async fn allowed(
    state: &AppState,
    ctx: &Arc<RequestContext>,
    topic: &str,
    write: bool,
    extension: &str,
) -> bool {
    if ctx.bypass_rls {
        return true;
    }
    let schema = state.db.schema.get();
    let Some(table) = schema.storage.get(MESSAGES) else {
        return false;
    };
    let pred = if write {
        predicate::check(table, Command::Insert)
    } else {
        predicate::using(table, Command::Select)
    };
    let sql = format!(
        "SELECT ({pred}) FROM (SELECT ?1 AS topic, ?2 AS extension, NULL AS payload, \
         NULL AS event, 1 AS private, now() AS inserted_at, now() AS updated_at) AS {MESSAGES}"
    );
    let (topic, extension) = (topic.to_string(), extension.to_string());
    state
        .db
        .read(Some(ctx.clone()), move |conn| {
            conn.query_row(&sql, [&topic, &extension], |r| r.get::<_, Option<bool>>(0))
                .map_err(crate::db::DbError::from)
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
