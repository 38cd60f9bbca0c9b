//! Helpers the benchmarks share (`mod common;` in a bench file).
#![allow(dead_code)] // each benchmark uses only some of them

use rusqlite::params;

/// Peak resident memory of a process (VmHWM, kB): one reading at the end
/// of a run is its high-water mark. `None` where /proc is not readable.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `users` users (card = pin = i) with their authorisations for every door
/// of a 4-door board under time rule 1, which covers every day: the store
/// the latency benchmarks decide against.
pub fn fill_users(store: &mut lintel::store::Store, users: u32) {
    let conn = store.conn_mut();
    let tx = conn.transaction().expect("tx");
    {
        let mut u = tx
            .prepare("INSERT INTO users(pin, cardno, name) VALUES (?1, ?2, ?3)")
            .expect("prepare");
        let mut a = tx
            .prepare("INSERT INTO user_authorizations(pin, timezone_id, door_mask, dev_id) VALUES (?1, 1, 15, 1)")
            .expect("prepare");
        for i in 1..=users {
            u.execute(params![i.to_string(), i.to_string(), format!("User {i}")])
                .expect("user");
            a.execute(params![i.to_string()]).expect("authorisation");
        }
        tx.execute(
            "INSERT INTO time_zones(timezone_id, sun_time1, mon_time1, tue_time1, wed_time1, thu_time1, fri_time1, sat_time1)
             VALUES (1, 2359, 2359, 2359, 2359, 2359, 2359, 2359)",
            [],
        )
        .expect("time rule");
    }
    tx.commit().expect("commit");
}
