//! Helpers shared by the end-to-end suites: a server on a socket, chromedriver, pages.
