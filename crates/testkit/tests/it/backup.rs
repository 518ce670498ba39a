//! `marketops backup` and `restore` round-trip every table exactly.

use super::*;
use marketops::cli::{Command, run};

both!(backup_and_restore_round_trip, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut api = app.api("admin@yunqi.example").await;
    api.json(Method::PATCH, "/api/v1/company", &json!({"industry": "云计算 · 备份测试"})).await;
    let before = store::backup::dump(&app.db).await.unwrap();
    assert!(before["users"].len() >= 20);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.bin");
    let cfg = testkit::test_config(&app.testdb.url);
    run(Command::Backup { file: file.clone() }, cfg.clone()).await.unwrap();
    assert!(run(Command::Backup { file: file.clone() }, cfg.clone()).await.is_err(), "never overwrites");
    // Change things after the backup…
    api.json(Method::PATCH, "/api/v1/company", &json!({"name": "改过的名字"})).await;
    api.json(Method::POST, "/api/v1/departments", &json!({"name": "备份后新建", "kind": "sales"})).await;
    assert_ne!(store::backup::dump(&app.db).await.unwrap(), before);
    // …restore needs confirmation, then brings back exactly the backed-up state.
    assert!(run(Command::Restore { file: file.clone(), yes: false }, cfg.clone()).await.is_err());
    run(Command::Restore { file: file.clone(), yes: true }, cfg.clone()).await.unwrap();
    let after = store::backup::dump(&app.db).await.unwrap();
    assert_eq!(after, before);
    // Ids continue after the restored rows (sequences are reset on PostgreSQL).
    let r = api.json(Method::POST, "/api/v1/departments", &json!({"name": "恢复后新建", "kind": "sales"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A file that is not a backup is refused and changes nothing.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"hello").unwrap();
    let snapshot = store::backup::dump(&app.db).await.unwrap();
    assert!(run(Command::Restore { file: junk, yes: true }, cfg).await.is_err());
    assert_eq!(store::backup::dump(&app.db).await.unwrap(), snapshot);
    app.stop().await;
});
