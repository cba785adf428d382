//! Which plugin file owns each rail name in each mode. Money movements
//! record their rail by the name it gives itself, and a provider's callback
//! reaches a rail by its file (`/v1/callbacks/{plugin}`): if a later file
//! could take a name, its callbacks could settle the earlier rail's
//! payments. So the first file to register a name for a mode owns it for as
//! long as anything was recorded under that name in that mode (payments
//! are never deleted: in practice, for good); a name nothing was recorded
//! under may pass to another file. This module owns the `rail_owners` table.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;
use crate::values::mode::Mode;

/// Tables that record a rail by name.
const RECORDED_BY_RAIL: [&str; 4] = ["payments", "refunds", "disputes", "settlements"];

/// Registers `plugin` (a file stem) as the owner of the rail name `rail`
/// in `mode`, or says why it may not be.
pub fn claim(
    conn: &Connection,
    rail: &str,
    mode: Mode,
    plugin: &str,
    now_ms: i64,
) -> Result<Result<(), String>, StoreError> {
    let owner: Option<String> = conn
        .prepare_cached("SELECT plugin FROM rail_owners WHERE rail = ?1 AND mode = ?2")?
        .query_row(params![rail, mode], |row| row.get(0))
        .optional()?;
    match owner {
        Some(owner) if owner == plugin => return Ok(Ok(())),
        Some(owner) if recorded_under(conn, rail, mode)? => {
            return Ok(Err(format!(
                "the {mode} rail name {rail:?} belongs to the plugin file {owner:?}, whose payments are recorded \
                 under it; load that file, or give this rail another name"
            )));
        }
        _ => {}
    }
    conn.prepare_cached(
        "INSERT INTO rail_owners (rail, mode, plugin, registered_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (rail, mode) DO UPDATE SET plugin = excluded.plugin, registered_at = excluded.registered_at",
    )?
    .execute(params![rail, mode, plugin, now_ms])?;
    Ok(Ok(()))
}

/// Whether anything was recorded under the rail name `rail` in `mode`.
fn recorded_under(conn: &Connection, rail: &str, mode: Mode) -> Result<bool, StoreError> {
    for table in RECORDED_BY_RAIL {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE rail = ?1 AND mode = ?2)");
        if conn.prepare_cached(&sql)?.query_row(params![rail, mode], |row| row.get::<_, bool>(0))? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_file_keeps_a_name_once_anything_is_recorded_under_it() {
        let (conn, merchant_id) = crate::testing::database_with_merchant();
        assert_eq!(claim(&conn, "mtn", Mode::Test, "mtn-momo", 1).unwrap(), Ok(()));
        assert_eq!(claim(&conn, "mtn", Mode::Test, "mtn-momo", 2).unwrap(), Ok(()), "the owner again");
        assert_eq!(claim(&conn, "mtn", Mode::Test, "renamed", 3).unwrap(), Ok(()), "nothing recorded yet: it may pass");
        assert_eq!(claim(&conn, "mtn", Mode::Test, "mtn-momo", 4).unwrap(), Ok(()));
        conn.execute(
            "INSERT INTO payments (id, merchant_id, mode, reference, idempotency_key, status, amount, fee, currency,
                                   method, metadata, rail, entity, created_at)
             VALUES ('pay_1', ?1, 'test', 'ref_1', 'key_1', 'processing', 100, 0, 'USD', 'mtn_momo', '{}', 'mtn',
                     'Phoenix Hub Liberia, Inc.', 0)",
            params![merchant_id],
        )
        .unwrap();
        let refused = claim(&conn, "mtn", Mode::Test, "evil", 5).unwrap().unwrap_err();
        assert!(refused.contains("\"mtn-momo\""), "{refused}");
        assert_eq!(claim(&conn, "mtn", Mode::Test, "mtn-momo", 6).unwrap(), Ok(()));
        assert_eq!(claim(&conn, "orange", Mode::Test, "evil", 7).unwrap(), Ok(()), "other names are free");
        assert_eq!(claim(&conn, "mtn", Mode::Live, "mtn-momo-live", 8).unwrap(), Ok(()), "the other mode is apart");
    }
}
