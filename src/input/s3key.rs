//! Metadata AWS writes into S3 object keys: account, region, flow-log id and time stamp, from
//! `AWSLogs/{account}/vpcflowlogs/{region}/{yyyy}/{mm}/{dd}/[{hh}/]` (or the Hive-style
//! `aws-account-id=.../year=...` form) and from the file name
//! `{account}_vpcflowlogs_{region}_{flow-log-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz`.

use serde::{Deserialize, Serialize};

/// What an object key says. Every part is optional: users rename and re-arrange files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Key {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_log_id: Option<String>,
    /// The file-name time stamp, Unix seconds. Not a strict window: AWS may put records of
    /// neighbouring windows in a file (format reference §3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_time: Option<i64>,
    /// The partition date from the folders, `YYYY-MM-DD` (with `THH` when hourly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl S3Key {
    /// Reads what it can from a `/`-separated key or path.
    pub fn from_key(key: &str) -> S3Key {
        let parts: Vec<&str> = key.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
        let mut out = S3Key::default();
        if let Some(name) = parts.last() {
            out.read_file_name(name);
        }
        if let Some(pos) = parts.iter().rposition(|p| *p == "AWSLogs") {
            let folders = parts.get(pos + 1..parts.len() - 1).unwrap_or_default();
            out.read_folders(folders);
        }
        out
    }

    /// When the object's records were written, as far as the key tells: its file-name time
    /// stamp, else the start of its partition's day or hour (Unix seconds).
    pub fn time(&self) -> Option<i64> {
        self.file_time.or_else(|| {
            let partition = self.partition.as_deref()?;
            // Hive-style folders may leave out the leading zeros (`month=4`).
            let (date, hour) = match partition.split_once('T') {
                Some((date, hour)) => (date, hour.parse().ok()?),
                None => (partition, 0),
            };
            let mut ymd = date.splitn(3, '-').map(|n| n.parse::<u32>().ok());
            let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
            crate::time::unix_seconds(i64::from(y), m, d, hour, 0, 0)
        })
    }

    fn read_file_name(&mut self, name: &str) {
        let pieces: Vec<&str> = name.split('_').collect();
        let Some(svc) = pieces.iter().position(|p| *p == "vpcflowlogs") else {
            return;
        };
        if svc == 0 || pieces.len() < svc + 4 {
            return;
        }
        let account = pieces[svc - 1];
        if account.bytes().all(|c| c.is_ascii_digit()) {
            self.account_id = Some(account.to_owned());
        }
        self.region = Some(pieces[svc + 1].to_owned());
        if pieces[svc + 2].starts_with("fl-") {
            self.flow_log_id = Some(pieces[svc + 2].to_owned());
        }
        self.file_time = parse_stamp(pieces[svc + 3]);
    }

    fn read_folders(&mut self, folders: &[&str]) {
        let mut date: Vec<&str> = Vec::new();
        let mut seen_service = false;
        for (i, f) in folders.iter().enumerate() {
            if let Some((k, v)) = f.split_once('=') {
                match k {
                    "aws-account-id" => set_if_none(&mut self.account_id, v),
                    "aws-service" => seen_service = true,
                    "aws-region" => set_if_none(&mut self.region, v),
                    "year" | "month" | "day" | "hour" => date.push(v),
                    _ => {}
                }
            } else if *f == "vpcflowlogs" {
                seen_service = true;
                if i >= 1 && folders[i - 1].bytes().all(|c| c.is_ascii_digit()) {
                    set_if_none(&mut self.account_id, folders[i - 1]);
                }
                if let Some(region) = folders.get(i + 1) {
                    set_if_none(&mut self.region, region);
                }
                date.extend(folders.iter().skip(i + 2).take(4).copied());
                break;
            }
        }
        if !seen_service {
            return;
        }
        let all_digits = |s: &&str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if date.len() >= 3 && date.iter().take(3).all(all_digits) {
            let mut p = format!("{}-{}-{}", date[0], date[1], date[2]);
            if let Some(h) = date.get(3).filter(|h| all_digits(h)) {
                p.push('T');
                p.push_str(h);
            }
            self.partition = Some(p);
        }
    }
}

fn set_if_none(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_owned());
    }
}

/// `20180620T1620Z` to Unix seconds.
fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    crate::time::unix_seconds(i64::from(n(0..4)?), n(4..6)?, n(6..8)?, n(9..11)?, n(11..13)?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_default_layout() {
        let k = S3Key::from_key(
            "evidence/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/\
             123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz",
        );
        assert_eq!(k.account_id.as_deref(), Some("123456789012"));
        assert_eq!(k.region.as_deref(), Some("us-east-1"));
        assert_eq!(k.flow_log_id.as_deref(), Some("fl-1234abcd"));
        assert_eq!(k.file_time, Some(1_529_511_600));
        assert_eq!(k.partition.as_deref(), Some("2018-06-20"));
        assert_eq!(k.time(), k.file_time);
    }

    #[test]
    fn reads_hive_layout_with_hour() {
        let k = S3Key::from_key(
            "AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=eu-west-1/\
             year=2024/month=04/day=28/hour=13/x.log.gz",
        );
        assert_eq!(k.account_id.as_deref(), Some("111122223333"));
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert_eq!(k.partition.as_deref(), Some("2024-04-28T13"));
        assert_eq!(k.time(), Some(1_714_309_200));
        let unpadded = S3Key::from_key(
            "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=eu-west-1/\
             year=2024/month=4/day=28/hour=3/x.log.gz",
        );
        assert_eq!(unpadded.time(), Some(1_714_309_200 - 10 * 3600));
        for partition in ["2024-04", "2024-04-28T", "2024-13-01", "x-04-28"] {
            let k = S3Key {
                partition: Some(partition.into()),
                ..S3Key::default()
            };
            assert_eq!(k.time(), None, "{partition}");
        }
        assert_eq!(k.flow_log_id, None);
    }

    #[test]
    fn unrelated_paths_give_nothing() {
        assert_eq!(S3Key::from_key("/tmp/flows.log"), S3Key::default());
        assert_eq!(S3Key::from_key("AWSLogs/"), S3Key::default());
        assert_eq!(S3Key::from_key(""), S3Key::default());
    }
}
