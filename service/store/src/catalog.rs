//! The roll catalog (rolls and their files) and the hosts that install from it.

use diesel::prelude::*;

use crate::{Store, StoreError};

diesel::table! {
    rolls (name) {
        name -> Text,
        version -> Text,
        arch -> Text,
        added_ms -> BigInt,
    }
}

diesel::table! {
    roll_files (roll, path) {
        roll -> Text,
        path -> Text,
        body -> Text,
    }
}

diesel::table! {
    cluster_rolls (cluster, roll) {
        cluster -> Text,
        roll -> Text,
    }
}

diesel::table! {
    hosts (name) {
        name -> Text,
        mac -> Nullable<Text>,
        ip -> Nullable<Text>,
        cluster -> Text,
        appliance -> Text,
        attributes -> Text,
        created_ms -> BigInt,
        install_state -> Nullable<Text>,
        install_ms -> Nullable<BigInt>,
        install_message -> Nullable<Text>,
    }
}

/// One roll of the catalog; its files are [`RollFileRow`]s.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rolls)]
pub struct RollRow {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub added_ms: i64,
}

/// One file of a roll: its path inside the roll (`nodes/x.xml`) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = roll_files)]
pub struct RollFileRow {
    pub roll: String,
    pub path: String,
    pub body: String,
}

/// A registered host. `cluster` is the System resource id; `attributes` is a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = hosts, treat_none_as_null = true)]
pub struct HostRow {
    pub name: String,
    pub mac: Option<String>,
    pub ip: Option<String>,
    pub cluster: String,
    pub appliance: String,
    pub attributes: String,
    pub created_ms: i64,
    pub install_state: Option<String>,
    pub install_ms: Option<i64>,
    pub install_message: Option<String>,
}

/// Rows per INSERT: far below the bind-parameter limits of both backends.
const FILES_PER_INSERT: usize = 500;

impl Store {
    /// Every roll with its files, rolls by name, files by path.
    pub fn load_rolls(&self) -> Result<Vec<(RollRow, Vec<RollFileRow>)>, StoreError> {
        with_conn!(self, |conn| {
            let rolls = rolls::table
                .order(rolls::name)
                .select(RollRow::as_select())
                .load(conn)?;
            let mut files = roll_files::table
                .order((roll_files::roll, roll_files::path))
                .select(RollFileRow::as_select())
                .load(conn)?
                .into_iter()
                .peekable();
            Ok(rolls
                .into_iter()
                .map(|roll| {
                    let mut own = Vec::new();
                    while let Some(file) = files.next_if(|f| f.roll == roll.name) {
                        own.push(file);
                    }
                    (roll, own)
                })
                .collect())
        })
    }

    /// Adds the roll, or replaces the stored roll of that name and all its files, atomically.
    pub fn put_roll(&self, roll: &RollRow, files: &[RollFileRow]) -> Result<(), StoreError> {
        with_conn!(self, |conn| Ok(conn.transaction(|conn| {
            diesel::delete(roll_files::table.filter(roll_files::roll.eq(&roll.name)))
                .execute(conn)?;
            diesel::delete(rolls::table.find(&roll.name)).execute(conn)?;
            diesel::insert_into(rolls::table)
                .values(roll)
                .execute(conn)?;
            for chunk in files.chunks(FILES_PER_INSERT) {
                diesel::insert_into(roll_files::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?))
    }

    /// Removes the roll and its files; `false` if there was no such roll.
    pub fn delete_roll(&self, name: &str) -> Result<bool, StoreError> {
        with_conn!(self, |conn| Ok(conn.transaction(|conn| {
            diesel::delete(roll_files::table.filter(roll_files::roll.eq(name))).execute(conn)?;
            diesel::delete(rolls::table.find(name))
                .execute(conn)
                .map(|n| n > 0)
        })?))
    }

    /// The rolls enabled per cluster, as (cluster, roll), by cluster then roll.
    pub fn load_cluster_rolls(&self) -> Result<Vec<(String, String)>, StoreError> {
        with_conn!(self, |conn| Ok(cluster_rolls::table
            .order((cluster_rolls::cluster, cluster_rolls::roll))
            .select((cluster_rolls::cluster, cluster_rolls::roll))
            .load(conn)?))
    }

    /// Replaces the rolls enabled for `cluster`; none: the cluster uses the whole catalog.
    pub fn set_cluster_rolls(&self, cluster: &str, rolls: &[String]) -> Result<(), StoreError> {
        with_conn!(self, |conn| Ok(conn.transaction(|conn| {
            diesel::delete(cluster_rolls::table.filter(cluster_rolls::cluster.eq(cluster)))
                .execute(conn)?;
            let rows: Vec<_> = rolls
                .iter()
                .map(|roll| {
                    (
                        cluster_rolls::cluster.eq(cluster),
                        cluster_rolls::roll.eq(roll),
                    )
                })
                .collect();
            diesel::insert_into(cluster_rolls::table)
                .values(&rows)
                .execute(conn)
                .map(|_| ())
        })?))
    }

    /// Every registered host, by name.
    pub fn load_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        with_conn!(self, |conn| Ok(hosts::table
            .order(hosts::name)
            .select(HostRow::as_select())
            .load(conn)?))
    }

    /// Registers the host, or replaces the stored host of that name.
    pub fn put_host(&self, host: &HostRow) -> Result<(), StoreError> {
        with_conn!(self, |conn| {
            diesel::insert_into(hosts::table)
                .values(host)
                .on_conflict(hosts::name)
                .do_update()
                .set(host)
                .execute(conn)?;
            Ok(())
        })
    }

    /// `false` if there was no such host.
    pub fn delete_host(&self, name: &str) -> Result<bool, StoreError> {
        with_conn!(self, |conn| Ok(diesel::delete(hosts::table.find(name))
            .execute(conn)?
            > 0))
    }

    /// Records install progress (`started`, `finished`, `failed`); `false` if no such host.
    pub fn set_install_state(
        &self,
        name: &str,
        state: &str,
        at_ms: i64,
        message: Option<&str>,
    ) -> Result<bool, StoreError> {
        with_conn!(self, |conn| Ok(diesel::update(hosts::table.find(name))
            .set((
                hosts::install_state.eq(state),
                hosts::install_ms.eq(at_ms),
                hosts::install_message.eq(message),
            ))
            .execute(conn)?
            > 0))
    }
}
