"""The one error type of the stand-in: what Solr answers with a non-200 status."""


class SolrError(Exception):
    """An error Solr reports as JSON `{"error": {"msg", "code"}}` with HTTP status `code`."""

    def __init__(self, code: int, msg: str, error_class: str = "org.apache.solr.common.SolrException"):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.error_class = error_class


def syntax_error(query: str, detail: str) -> SolrError:
    """A query parse failure, worded like Solr's standard query parser."""
    return SolrError(400, f"org.apache.solr.search.SyntaxError: Cannot parse '{query}': {detail}",
                     error_class="org.apache.solr.search.SyntaxError")
