//! Password hashing with Argon2id, off the async runtime (it is deliberately slow).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Version};

/// Argon2id cost parameters. The default follows OWASP's recommendation (19 MiB, 2 passes);
/// tests use cheaper values.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params { memory_kib: 19 * 1024, iterations: 2 }
    }
}

fn hasher(p: Params) -> Argon2<'static> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously (for the CLI and the demo loader).
pub fn hash_blocking(password: &str, p: Params) -> String {
    match hasher(p).hash_password(password.as_bytes()) {
        Ok(h) => h.to_string(),
        Err(e) => panic!("argon2 could not hash a password: {e}"),
    }
}

pub async fn hash(password: String, p: Params) -> String {
    tokio::task::spawn_blocking(move || hash_blocking(&password, p)).await.expect("the password hashing task panicked")
}

/// Verifies against a stored PHC string; a malformed hash never verifies.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &phc)).await.unwrap_or(false)
}
