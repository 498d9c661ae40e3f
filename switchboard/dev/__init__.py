"""Development-only code: the embedded HTTP host, the web client's static files, the dev token
issuer and the dev routes. Never shipped: `.funcignore` leaves this folder out of the Functions
package (tests/infra/test_funcignore.py), and the app registers the dev routes only in dev mode."""
