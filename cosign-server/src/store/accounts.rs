//! Administrator accounts and their sessions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::Db;

/// An administrator account as stored.
#[derive(Clone)]
pub struct Account {
    /// Server-generated id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `sysadmin`, `secadmin` or `auditor`.
    pub role: String,
    /// PBKDF2-HMAC-SM3 verifier.
    pub password_hash: String,
    /// Whether the password must be changed before anything else.
    pub must_change_password: bool,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked until this instant (unix ms), if locked.
    pub locked_until: Option<i64>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str =
    "id, username, role, password_hash, must_change_password, failed_logins, locked_until";

fn from_row(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        role: row.try_get(2)?,
        password_hash: row.try_get(3)?,
        must_change_password: row.try_get::<i64, _>(4)? != 0,
        failed_logins: row.try_get(5)?,
        locked_until: row.try_get(6)?,
    })
}

impl Db {
    /// Creates an account; fails if the name is taken.
    pub async fn create_account(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO accounts (id, username, role, password_hash, must_change_password, failed_logins, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, 0, $5, $5)",
        )
        .bind(&id)
        .bind(username)
        .bind(role)
        .bind(password_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Number of accounts (0 means the data directory is not initialised).
    pub async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }

    /// Looks an account up by login name.
    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a failed login, locking the account at `max_failed` consecutive failures.
    /// Returns whether the account is now locked.
    pub async fn record_login_failure(
        &self,
        id: &str,
        max_failed: u32,
        lock_until: i64,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE accounts SET failed_logins = failed_logins + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let failed: i64 = sqlx::query("SELECT failed_logins FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let locked = failed >= i64::from(max_failed);
        if locked {
            sqlx::query("UPDATE accounts SET locked_until = $2, failed_logins = 0 WHERE id = $1")
                .bind(id)
                .bind(lock_until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(locked)
    }

    /// Clears the failure counter and any expired lock after a successful login.
    pub async fn record_login_success(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets a new password verifier, clears the change-required flag and ends all other sessions.
    pub async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE accounts SET password_hash = $2, must_change_password = 0, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2")
            .bind(id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new session.
    pub async fn create_session(
        &self,
        token_hash: &str,
        account_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(account_id)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The account behind a live session.
    pub async fn session_account(&self, token_hash: &str, now: i64) -> Result<Option<Account>> {
        let sql = format!(
            "SELECT {} FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            COLUMNS
                .split(", ")
                .map(|c| format!("a.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
