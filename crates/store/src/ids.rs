use rand::Rng;
use rand::distr::Alphanumeric;

fn random(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new write key: 32 letters and digits, about 190 bits of entropy.
pub fn new_write_key() -> String {
    random(32)
}

/// A new secret token (the admin token): 40 letters and digits.
pub fn new_secret() -> String {
    random(40)
}

pub(crate) fn new_id(prefix: &str) -> String {
    let mut s = String::from(prefix);
    s.push_str(&random(16));
    s
}
