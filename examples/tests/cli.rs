//! The worker's command line, run as a real process.

use std::process::Command;

/// `--help` never prints a secret from the environment (clap shows env
/// values by default).
#[test]
fn help_does_not_show_the_database_password() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["run", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(&args)
            .env(
                "DATABASE_URL",
                "postgres://app:hunter2-secret@db.internal/app",
            )
            .output()
            .expect("the worker runs");
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
        assert!(
            !text.contains("hunter2"),
            "{args:?} printed the password:\n{text}"
        );
    }
}

/// A bad credential configuration stops `serve` with an error that names
/// the variable and never echoes the secret.
#[test]
fn serve_refuses_weak_credentials_without_echoing_them() {
    let cases = [
        ("TASKER_JWT_SECRET", "short-secret", "at least 32"),
        ("TASKER_API_TOKENS", "ops:weak-token:*", "at least 24"),
        ("TASKER_API_TOKENS", "weak-token=*", "name:token:permission"),
    ];
    for (var, value, expected) in cases {
        let dir = std::env::temp_dir().join(format!("tasker-cli-{}-{var}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DATABASE_URL", dir.join("db.sqlite"))
            .env(var, value)
            .env("TASKER_JWT_ISSUER", "iss")
            .env("TASKER_JWT_AUDIENCE", "aud")
            .output()
            .expect("the worker runs");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        let secret = value
            .split([':', '='])
            .find(|s| s.starts_with("weak") || s.starts_with("short"));
        assert!(
            !stderr.contains(secret.unwrap()),
            "echoed the secret: {stderr}"
        );
    }
}
