"""Runs one Swift WSGI server with swift.conf read from the config's folder.

Swift's servers read /etc/swift/swift.conf (hash prefix/suffix, storage policies) from a
fixed path and ignore `swift_dir` for it; only swift-recon calls set_swift_dir(). This
launcher calls it before run_wsgi so that a private instance is self-contained in DIR.
    python3 swift-server.py proxy-server|account-server|container-server|object-server CONF
"""
import os
import sys

from swift.common import constraints, storage_policy, utils
from swift.common.wsgi import run_wsgi


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    server, conf_file = sys.argv[1], os.path.abspath(sys.argv[2])
    utils.set_swift_dir(os.path.dirname(conf_file))
    storage_policy.reload_storage_policies()
    constraints.reload_constraints()
    # verbose: log to stderr too, which swift.sh sends to DIR/<server>.log
    sys.exit(run_wsgi(conf_file, server, verbose=True))


if __name__ == '__main__':
    main()
