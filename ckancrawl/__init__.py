"""ckancrawl: a Scrapy project that measures the CKAN open-data ecosystem."""
