# Reads or writes OVN_Northbound through the OVS project's own Python IDL (python3-openvswitch): an
# independent client the TypeScript client is checked against. Usage: python-idl.py SOCKET read|write
import json, sys
import ovs.db.idl, ovs.poller

sock, mode = sys.argv[1], sys.argv[2]
helper = ovs.db.idl.SchemaHelper('/usr/share/ovn/ovn-nb.ovsschema')
helper.register_all()
idl = ovs.db.idl.Idl('unix:' + sock, helper)

def spin(cond):
    while not cond():
        idl.run()
        p = ovs.poller.Poller()
        idl.wait(p)
        p.timer_wait(100)
        p.block()

spin(lambda: idl.has_ever_connected() and idl.run() is not None and idl.change_seqno > 0)
if mode == 'write':
    txn = ovs.db.idl.Transaction(idl)
    p = txn.insert(idl.tables['Logical_Switch_Port'])
    p.name = 'py-p1'
    p.tag_request = [7]
    p.enabled = [False]
    p.addresses = ['00:00:00:00:00:07 10.0.0.7', 'dynamic']
    p.options = {'requested-chassis': 'node-1'}
    p.external_ids = {'by': 'python'}
    ls = txn.insert(idl.tables['Logical_Switch'])
    ls.name = 'py-ls'
    ls.ports = [p]
    status = txn.commit_block()
    print(json.dumps({'status': status}))
else:
    out = []
    for r in idl.tables['Logical_Switch_Port'].rows.values():
        opt = lambda v: v[0] if v else None
        out.append({'uuid': str(r.uuid), 'name': r.name, 'tag_request': opt(r.tag_request), 'enabled': opt(r.enabled),
                    'addresses': sorted(r.addresses), 'options': dict(r.options), 'external_ids': dict(r.external_ids)})
    print(json.dumps(sorted(out, key=lambda x: x['name'])))
idl.close()
