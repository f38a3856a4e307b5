// An independent OCPP 2.0.1 CSMS for the charger's tests, built on ocpp-rpc in strict
// mode: every call and response in both directions is checked against the official
// JSON schemas, and each violation is reported. It answers the station's calls, then
// drives a scripted sequence of CSMS-initiated operations, printing one JSON line per
// event: {"event": "listening" | "in" | "out" | "violation" | "done", ...}.
'use strict';
const { RPCServer } = require('ocpp-rpc');

const log = (record) => process.stdout.write(JSON.stringify(record) + '\n');
const now = () => new Date().toISOString();
const ALICE = { idToken: 'ALICE', type: 'ISO14443' };

const server = new RPCServer({ protocols: ['ocpp2.0.1'], strictMode: true });

server.on('client', (client) => {
  client.on('strictValidationFailure', (failure) => {
    log({
      event: 'violation',
      method: failure.method,
      outbound: failure.outbound,
      isCall: failure.isCall,
      error: String(failure.error && failure.error.message),
      details: failure.error && failure.error.details,
    });
  });
  const started = [];
  let booted = null;
  const bootSeen = new Promise((resolve) => { booted = resolve; });
  const answers = {
    BootNotification: () => { booted(); return { currentTime: now(), interval: 300, status: 'Accepted' }; },
    Heartbeat: () => ({ currentTime: now() }),
    StatusNotification: () => ({}),
    Authorize: () => ({ idTokenInfo: { status: 'Accepted' } }),
    TransactionEvent: ({ params }) => {
      if (params.eventType === 'Started') started.push(params.transactionInfo.transactionId);
      return params.idToken ? { idTokenInfo: { status: 'Accepted' } } : {};
    },
    NotifyReport: () => ({}),
    NotifyEvent: () => ({}),
    MeterValues: () => ({}),
    SecurityEventNotification: () => ({}),
  };
  client.handle((call) => {
    log({ event: 'in', method: call.method, params: call.params });
    const answer = answers[call.method];
    if (!answer) throw new Error(`unexpected ${call.method}`);
    return answer(call);
  });

  const request = async (method, params) => {
    try {
      const result = await client.call(method, params);
      log({ event: 'out', method, params, result });
      return result;
    } catch (error) {
      log({ event: 'out', method, params, error: String(error.message), rpc: error.rpcErrorCode });
      return null;
    }
  };
  const waitFor = async (predicate) => {
    for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
  };

  (async () => {
    await bootSeen;
    await new Promise((r) => setTimeout(r, 200));
    const evse = { name: 'EVSE', evse: { id: 1 } };
    await request('GetVariables', {
      getVariableData: [
        { component: { name: 'OCPPCommCtrlr' }, variable: { name: 'HeartbeatInterval' } },
        { component: evse, variable: { name: 'AvailabilityState' } },
        { component: { name: 'NoSuchCtrlr' }, variable: { name: 'Enabled' } },
      ],
    });
    await request('SetVariables', {
      setVariableData: [
        { component: { name: 'AuthCtrlr' }, variable: { name: 'LocalPreAuthorize' }, attributeValue: 'false' },
        { component: { name: 'OCPPCommCtrlr' }, variable: { name: 'HeartbeatInterval' }, attributeValue: '300' },
        { component: { name: 'SecurityCtrlr' }, variable: { name: 'Identity' }, attributeValue: 'X' },
      ],
    });
    await request('GetBaseReport', { requestId: 1, reportBase: 'FullInventory' });
    await request('GetReport', { requestId: 2, componentCriteria: ['Enabled'] });
    await request('SendLocalList', {
      versionNumber: 1,
      updateType: 'Full',
      localAuthorizationList: [{ idToken: ALICE, idTokenInfo: { status: 'Accepted' } }],
    });
    await request('GetLocalListVersion', {});
    await request('ClearCache', {});
    await request('TriggerMessage', { requestedMessage: 'Heartbeat' });
    await request('TriggerMessage', { requestedMessage: 'StatusNotification', evse: { id: 1, connectorId: 1 } });
    await request('TriggerMessage', { requestedMessage: 'MeterValues', evse: { id: 1 } });
    await request('DataTransfer', { vendorId: 'org.example', messageId: 'ping', data: 'x' });
    await request('RequestStartTransaction', { idToken: ALICE, remoteStartId: 7, evseId: 1 });
    await waitFor(() => started.length > 0);
    await request('GetTransactionStatus', { transactionId: started[0] || 'none' });
    await request('RequestStopTransaction', { transactionId: started[0] || 'none' });
    await new Promise((r) => setTimeout(r, 500));
    log({ event: 'done' });
  })();
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1').then((http) => {
  log({ event: 'listening', port: http.address().port });
});
