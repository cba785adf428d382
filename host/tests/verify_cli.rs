//! `soxara verify` as an operator runs it: exit 0 on a sound ledger, 1 with
//! the first violation named otherwise.

use std::process::Command;

use soxara::ledger::{self, Account, AccountKind, EntryKind, Posting};
use soxara::store::Store;
use soxara::values::entity::Entity;
use soxara::values::mode::Mode;
use soxara::values::money::Currency;

fn account(owner: &str, kind: AccountKind) -> Account {
    let currency = Currency::from_code("USD").unwrap();
    Account { mode: Mode::Test, entity: Entity::unchecked("E"), owner: owner.into(), kind, currency }
}

fn verify(database: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_soxara")).arg("verify").arg("--database").arg(database).output().unwrap()
}

#[tokio::test]
async fn exit_status_says_whether_the_ledger_holds() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("ledger.db");
    let store = Store::open(&database).unwrap();
    store
        .write(|conn| {
            let postings = [
                Posting { account: account("platform", AccountKind::SandboxFunding), amount_minor: 500 },
                Posting { account: account("+231770001234", AccountKind::CustomerWallet), amount_minor: -500 },
            ];
            ledger::post(conn, Mode::Test, EntryKind::TopUp, "tup_1", &postings, 0)
        })
        .await
        .unwrap();

    let ok = verify(&database);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 entries, 2 postings"));

    let conn = rusqlite::Connection::open(&database).unwrap();
    conn.execute_batch(
        "DROP TRIGGER postings_append_only_update; UPDATE postings SET amount = amount * 2 WHERE amount > 0;",
    )
    .unwrap();
    let broken = verify(&database);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("does not balance in USD: off by 500"), "{stderr}");
}
