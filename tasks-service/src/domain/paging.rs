//! What a list answer says about the rest of the list: the `Link` header's `next` and `prev`
//! pages. The total itself (`X-Total-Count`) is the store's count; this file only does the
//! arithmetic and spells the links. Knows nothing about HTTP or SQL.

use super::ListParams;

/// The `Link` header value for a page of `returned` tasks out of `total` matching ones, or
/// `None` when the page is the whole list. `path` is the request's path exactly as the client
/// sent it (still percent-encoded), so the links resolve against the URL the client used,
/// whether it called the gateway or the service; the query is rebuilt from the parsed
/// parameters, in one fixed order, so unknown or repeated parameters are not carried along.
pub fn link_header(path: &str, params: &ListParams, returned: usize, total: i64) -> Option<String> {
    let returned = i64::try_from(returned).unwrap_or(i64::MAX);
    let mut links = Vec::with_capacity(2);
    // More after this page when the rows before it plus this page fall short of the total.
    if params.offset.saturating_add(returned) < total {
        let next = params.offset.saturating_add(params.limit);
        links.push(link(path, params, next, "next"));
    }
    if params.offset > 0 {
        // Past the end (an offset beyond the total), `prev` is the last real page, so a
        // client that overshot can step back to something.
        let prev = if params.offset > total {
            (total - 1).max(0) / params.limit * params.limit
        } else {
            (params.offset - params.limit).max(0)
        };
        links.push(link(path, params, prev, "prev"));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

fn link(path: &str, params: &ListParams, offset: i64, rel: &str) -> String {
    format!(
        "<{path}?status={}&sort={}&limit={}&offset={offset}>; rel=\"{rel}\"",
        params.status.as_str(),
        params.sort.as_str(),
        params.limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_shared::{SortOrder, StatusFilter};

    fn params(limit: i64, offset: i64) -> ListParams {
        ListParams {
            status: StatusFilter::Pending,
            sort: SortOrder::CreatedDesc,
            limit,
            offset,
        }
    }

    #[test]
    fn a_list_that_fits_in_one_page_has_no_links() {
        assert_eq!(link_header("/api/u/tasks", &params(100, 0), 3, 3), None);
        assert_eq!(link_header("/api/u/tasks", &params(100, 0), 0, 0), None);
    }

    #[test]
    fn the_first_page_links_to_the_next() {
        assert_eq!(
            link_header("/api/u%2F1/tasks", &params(2, 0), 2, 5).as_deref(),
            Some("</api/u%2F1/tasks?status=pending&sort=-created&limit=2&offset=2>; rel=\"next\"")
        );
    }

    #[test]
    fn a_middle_page_links_both_ways_and_the_last_only_back() {
        assert_eq!(
            link_header("/p", &params(2, 2), 2, 5).as_deref(),
            Some(
                "</p?status=pending&sort=-created&limit=2&offset=4>; rel=\"next\", \
                 </p?status=pending&sort=-created&limit=2&offset=0>; rel=\"prev\""
            )
        );
        assert_eq!(
            link_header("/p", &params(2, 4), 1, 5).as_deref(),
            Some("</p?status=pending&sort=-created&limit=2&offset=2>; rel=\"prev\"")
        );
    }

    #[test]
    fn prev_never_goes_below_zero_and_past_the_end_it_is_the_last_page() {
        let prev = |limit, offset, total| link_header("/p", &params(limit, offset), 0, total);
        assert!(prev(10, 3, 20).unwrap().contains("offset=0>; rel=\"prev\""));
        assert!(prev(2, 50, 5).unwrap().contains("offset=4>; rel=\"prev\""));
        assert!(prev(2, 50, 0).unwrap().contains("offset=0>; rel=\"prev\""));
        assert!(!prev(2, 50, 5).unwrap().contains("next"));
    }

    #[test]
    fn huge_offsets_do_not_overflow() {
        let header = link_header("/p", &params(500, i64::MAX), 0, 3).unwrap();
        assert!(header.contains("offset=0>; rel=\"prev\""), "{header}");
        assert_eq!(
            link_header("/p", &params(500, i64::MAX - 1), 0, i64::MAX).as_deref(),
            Some(
                "</p?status=pending&sort=-created&limit=500&offset=9223372036854775807>; rel=\"next\", \
                 </p?status=pending&sort=-created&limit=500&offset=9223372036854775306>; rel=\"prev\""
            )
        );
    }
}
