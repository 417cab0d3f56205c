//! Unit tests of the CRI line formatter, parser and renderer.

use super::*;
use time::macros::datetime;

#[test]
fn formats_full_lines_with_nanosecond_utc_timestamps() {
    let ts = datetime!(2024-01-01 01:00:00.123456789 +01:00);
    let line = format_cri_line(ts, LogStream::Stdout, b"hello world");
    assert_eq!(
        line,
        b"2024-01-01T00:00:00.123456789Z stdout F hello world\n".to_vec()
    );
    let ts = datetime!(2024-01-01 00:00:00 UTC);
    assert_eq!(format_timestamp(ts), "2024-01-01T00:00:00.000000000Z");
}

#[test]
fn parses_what_it_formats() {
    let ts = datetime!(2024-05-06 07:08:09.5 UTC);
    let line = format_cri_line(ts, LogStream::Stderr, b"a b  c");
    let parsed = parse_cri_line(&line).expect("parses");
    assert_eq!(parsed.timestamp, ts);
    assert_eq!(parsed.stream, LogStream::Stderr);
    assert!(!parsed.partial);
    assert_eq!(parsed.content, b"a b  c");
}

#[test]
fn parses_partial_and_empty_lines_and_go_style_timestamps() {
    let parsed = parse_cri_line(b"2024-01-01T00:00:00.1Z stdout P part").expect("parses");
    assert!(parsed.partial);
    assert_eq!(parsed.content, b"part");
    assert_eq!(parsed.timestamp, datetime!(2024-01-01 00:00:00.1 UTC));
    let parsed = parse_cri_line(b"2024-01-01T00:00:00Z stdout F").expect("parses");
    assert_eq!(parsed.content, b"");
    let parsed = parse_cri_line(b"2024-01-01T00:00:00Z stdout F ").expect("parses");
    assert_eq!(parsed.content, b"");
}

#[test]
fn rejects_malformed_lines() {
    for bad in [
        &b""[..],
        b"not-a-time stdout F x",
        b"2024-01-01T00:00:00Z stdio F x",
        b"2024-01-01T00:00:00Z stdout X x",
        b"2024-01-01T00:00:00Z",
    ] {
        assert!(
            parse_cri_line(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn renders_with_and_without_timestamps_and_since() {
    let line = b"2024-01-01T00:00:00.123456789Z stdout F hi";
    let mut opts = LogOptions::default();
    assert_eq!(render(line, &opts).as_deref(), Some(&b"hi\n"[..]));
    opts.timestamps = true;
    assert_eq!(
        render(line, &opts).as_deref(),
        Some(&b"2024-01-01T00:00:00.123456789Z hi\n"[..])
    );
    opts.since = Some(datetime!(2024-01-01 00:00:01 UTC));
    assert_eq!(render(line, &opts), None);
}
