// The Node.js bridge a user would write instead of telematics2mqtt: ws + mqtt.js, no discovery,
// no stale guard, no merged state, no throttle. bench/run.py runs it beside the C bridge.
//   node bridge.js WS_URL ACCESS_TOKEN INSTANCE_ID MQTT_URL QOS
const WebSocket = require('ws');
const mqtt = require('mqtt');

const [url, token, instance, broker, qosArg] = process.argv.slice(2);
const qos = Number(qosArg);
const client = mqtt.connect(broker, { clientId: 'node-bridge-' + process.pid });
let ready = false;

function connect() {
  const ws = new WebSocket(url);
  ws.on('open', () => ws.send(JSON.stringify({
    type: 'authenticate', access_token: token, instance_id: instance,
    units: 'metric', timezone: 'UTC', date_format: 'unix',
  })));
  ws.on('message', (data) => {
    let m;
    try { m = JSON.parse(data); } catch (e) { return; }
    if (m.type === 'ping') {
      ws.send(JSON.stringify({ type: 'pong', timestamp: Date.now() }));
    } else if (m.type === 'authenticated' && !ready) {
      ready = true;
      console.log('ready');
    } else if (m.type === 'device_update' && m.position && m.device_token) {
      const p = m.position;
      const topic = `telematics/${instance}/${encodeURIComponent(m.device_token)}/position`;
      client.publish(topic, JSON.stringify({
        instance_id: instance, device_token: m.device_token, track_token: m.track_token,
        latitude: p.Latitude, longitude: p.Longitude, speed: p.Speed, accuracy: p.Accuracy,
        heading: p.Heading, timestamp: new Date(p.Timestamp * 1000).toISOString(),
      }), { qos, retain: true });
    }
  });
  ws.on('close', () => setTimeout(connect, 50));
  ws.on('error', () => {});
}

client.once('connect', connect);
process.on('SIGTERM', () => client.end(false, {}, () => process.exit(0)));
