//! Test support: a throw-away PostgreSQL database per test, dropped even when the test fails.

use diesel::prelude::*;

/// A database created on the server at `VCDS_TEST_PG` (default: the local trust-auth server).
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// `None` (with a SKIP line on stderr) when no server answers, unless
    /// `VCDS_REQUIRE_POSTGRES=1`, as in CI, where that is a failure.
    pub fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var("VCDS_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(c) => c,
            Err(e) if std::env::var("VCDS_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                panic!("PostgreSQL required (VCDS_REQUIRE_POSTGRES=1) but not reachable at {admin_url}: {e}")
            }
            Err(e) => {
                {
                    // Past the test harness's capture, so a skip is seen.
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIP: PostgreSQL not reachable at {admin_url}: {e}"
                    );
                }
                return None;
            }
        };
        let name = format!("vcds_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin) {
            panic!("cannot create test database {name}: {e}");
        }
        Some(PgDatabase { admin_url, name })
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
