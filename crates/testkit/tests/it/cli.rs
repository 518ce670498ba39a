//! The command line: help, config layering, users, tokens, playbook check and diff, demo.

use super::*;
use clap::Parser;
use marketops::cli::{Cli, Command, PlaybookCmd, UserCmd, run};
use marketops::config::Config;
use std::process::ExitCode;

#[test]
fn help_is_in_english_and_lists_the_commands() {
    let e = Cli::try_parse_from(["marketops", "--help"]).unwrap_err();
    let help = e.to_string();
    for cmd in ["serve", "demo", "migrate", "healthcheck", "user", "playbook", "backup", "restore"] {
        assert!(help.contains(cmd), "{cmd} missing from --help:\n{help}");
    }
    let e = Cli::try_parse_from(["marketops", "user", "add", "--email", "x"]).unwrap_err();
    assert!(e.to_string().contains("--name"), "{e}");
    let e = Cli::try_parse_from(["marketops", "serve", "--port", "http"]).unwrap_err();
    assert!(e.to_string().contains("invalid value 'http'"), "{e}");
}

#[test]
fn config_layers_override_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("marketops.toml");
    std::fs::write(&file, "port = 9000\nlog_level = \"debug\"\n").unwrap();
    let env = vec![("MARKETOPS_PORT".to_string(), "9100".to_string()), ("PATH".into(), "/bin".into())];
    let c = Config::load(Some(&file), &env).unwrap();
    assert_eq!((c.port, c.log_level.as_str(), c.host.as_str()), (9100, "debug", "127.0.0.1"));
    assert_eq!(c.checkpoint_ms, 25);
    let env = vec![("MARKETOPS_CHECKPOINT_MS".to_string(), "100".to_string())];
    assert_eq!(Config::load(None, &env).unwrap().checkpoint_ms, 100);
    assert_eq!(c.capture_timeout_ms, 30_000);
    let env = vec![("MARKETOPS_CAPTURE_TIMEOUT_MS".to_string(), "2000".to_string())];
    assert_eq!(Config::load(None, &env).unwrap().web_settings().capture_timeout, std::time::Duration::from_secs(2));
    let bad = vec![("MARKETOPS_PORT".to_string(), "http".to_string())];
    assert!(Config::load(None, &bad).unwrap_err().contains("MARKETOPS_PORT"));
    let bad = vec![("MARKETOPS_PROT".to_string(), "1".to_string())];
    assert!(Config::load(None, &bad).unwrap_err().contains("prot"));
    std::fs::write(&file, "prot = 1\n").unwrap();
    assert!(Config::load(Some(&file), &[]).unwrap_err().contains("prot"));
    assert!(Config::load(Some(&dir.path().join("missing.toml")), &[]).unwrap_err().contains("cannot read"));
}

both!(cli_users_tokens_and_playbook, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    // user add with a bad role is a clear error naming the field, and writes nothing.
    let n = store::org::count_users(&app.db).await.unwrap();
    let bad = UserCmd::Add {
        email: "a@b.cn".into(),
        name: "A".into(),
        role: "boss".into(),
        password: Some("12345678".into()),
    };
    let e = run(Command::User(bad), cfg.clone()).await.unwrap_err().to_string();
    assert!(e.contains("role") && e.contains("marketing_director"), "{e}");
    assert_eq!(store::org::count_users(&app.db).await.unwrap(), n);
    let add = UserCmd::Add {
        email: "ops2@yunqi.example".into(),
        name: "运营二".into(),
        role: "marketer".into(),
        password: Some("first password".into()),
    };
    assert_eq!(run(Command::User(add), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let passwd = UserCmd::Passwd { email: "OPS2@yunqi.example".into(), password: Some("second password".into()) };
    run(Command::User(passwd), cfg.clone()).await.unwrap();
    let mut c = app.client();
    assert_eq!(
        c.post_form("/login", &[("email", "ops2@yunqi.example"), ("password", "second password")]).await.status,
        303
    );
    let e = run(Command::User(UserCmd::Token { email: "nobody@x.cn".into(), name: "x".into() }), cfg.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no account"));
    // playbook check: exit codes for a good and a bad file.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, domain::playbook::DEFAULT_DOCUMENT.replace("grade_a_min = 10", "grade_a_min = 12")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[leads]\nfoo = 1\n").unwrap();
    assert_eq!(
        run(Command::Playbook(PlaybookCmd::Check { file: good.clone() }), cfg.clone()).await.unwrap(),
        ExitCode::SUCCESS
    );
    assert_eq!(run(Command::Playbook(PlaybookCmd::Check { file: bad }), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    // playbook diff between a version and a file, and between two versions.
    let d =
        run(Command::Playbook(PlaybookCmd::Diff { a: "1".into(), b: good.display().to_string() }), cfg.clone()).await;
    assert_eq!(d.unwrap(), ExitCode::SUCCESS);
    assert!(run(Command::Playbook(PlaybookCmd::Diff { a: "1".into(), b: "7".into() }), cfg.clone()).await.is_err());
    // demo is idempotent: a second run adds nothing (the first adds the lead history).
    run(Command::Demo { history_days: 7 }, cfg.clone()).await.unwrap();
    let before = store::backup::dump(&app.db).await.unwrap();
    assert!(!before["leads"].is_empty());
    run(Command::Demo { history_days: 7 }, cfg.clone()).await.unwrap();
    let after = store::backup::dump(&app.db).await.unwrap();
    for t in ["users", "departments", "teams", "calendar_days", "company", "playbook_versions", "leads", "campaigns"] {
        assert_eq!(before[t], after[t], "{t} changed on the second demo run");
    }
    app.stop().await;
});
