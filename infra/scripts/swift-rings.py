"""Builds the account, container and object rings of a one-device Swift in DIR.

The same RingBuilder calls `swift-ring-builder X.builder create 6 1 1; add ...; rebalance`
makes, in one Python process instead of nine (each CLI call costs ~0.5 s of imports).
    python3 swift-rings.py DIR ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
"""
import os
import sys

from swift.common.ring import RingBuilder


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    swift_dir = sys.argv[1]
    for name, port in zip(('account', 'container', 'object'), sys.argv[2:]):
        # part power 6 (64 partitions) is plenty for one device; 1 replica; min_part_hours 1
        builder = RingBuilder(6, 1, 1)
        builder.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
                         'replication_ip': '127.0.0.1', 'replication_port': int(port),
                         'device': 'd1', 'weight': 100.0, 'meta': ''})
        builder.rebalance()
        # ring before builder, as swift-ring-builder does (else it calls the ring obsolete)
        builder.get_ring().save(os.path.join(swift_dir, name + '.ring.gz'))
        builder.save(os.path.join(swift_dir, name + '.builder'))


if __name__ == '__main__':
    main()
