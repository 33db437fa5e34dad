//! A vendor's stock page, as the HTTP client reads it: any headers and body give a page
//! or a fault naming its field, never a panic, and a page given is consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, u16, Option<&str>, Option<&str>, &[u8])| {
    let (page, limit, total, as_of, body) = input;
    let (page, limit) = (u32::from(page), u32::from(limit));
    match aggregator_http::stock_page(page, limit, total, as_of, body) {
        Ok(read) => {
            assert!(page >= 1 && limit >= 1, "page {page} of {limit} was read");
            assert!(
                read.rows.len() <= limit as usize,
                "more rows than asked for"
            );
            if let Some(next) = read.next_page {
                assert_eq!(next, page + 1);
            }
            if let Some(last) = read.last_page {
                assert!(last >= 1);
            }
            for row in &read.rows {
                assert!(row.quantity >= 0, "a negative quantity got through");
            }
        }
        Err(fault) => assert!(!fault.field.is_empty(), "a fault names its field"),
    }
});
