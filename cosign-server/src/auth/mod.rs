//! Administrator accounts: password verifiers, password policy, sessions and lockout.

pub mod password;
