// The static list of meshed destinations: what parses, what is refused and
// why, and which identity a destination address is held to.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SocketAddress } from '../../native/index.js';
import { MeshedDestinations, MeshedDestinationsError, parseMeshedDestinations } from './destinations.js';

const API = 'api.default.serviceaccount.identity.cluster.local';
const WEB = 'web.default.serviceaccount.identity.cluster.local';
const DB = 'db.data.serviceaccount.identity.cluster.local';

const v4 = (address: string): SocketAddress => ({ address, port: 8080, family: 4 });
const v6 = (address: string): SocketAddress => ({ address, port: 8080, family: 6 });
const table = (raw: string): MeshedDestinations => new MeshedDestinations(parseMeshedDestinations(raw));

describe('parseMeshedDestinations', () => {
  it('parses addresses and subnets of both families', () => {
    assert.deepEqual(parseMeshedDestinations(`198.18.0.3=${API},10.42.0.0/16=${WEB},fd00::1=${DB},fd6d::/64=${WEB}`), [
      { network: '198.18.0.3', identity: API },
      { network: '10.42.0.0/16', identity: WEB },
      { network: 'fd00::1', identity: DB },
      { network: 'fd6d::/64', identity: WEB },
    ]);
  });

  it('takes IPv6 in brackets, as in a URL', () => {
    assert.deepEqual(parseMeshedDestinations(`[fd00::1]=${DB},[fd6d::]/64=${WEB}`), [
      { network: 'fd00::1', identity: DB },
      { network: 'fd6d::/64', identity: WEB },
    ]);
  });

  it('ignores spaces and empty items', () => {
    assert.deepEqual(parseMeshedDestinations(` 198.18.0.3 = ${API} ,, , 0.0.0.0/0=${WEB},`), [
      { network: '198.18.0.3', identity: API },
      { network: '0.0.0.0/0', identity: WEB },
    ]);
    assert.deepEqual(parseMeshedDestinations(''), []);
    assert.deepEqual(parseMeshedDestinations(' , '), []);
  });

  it('takes the prefix lengths at the ends of each family', () => {
    assert.equal(parseMeshedDestinations(`10.0.0.1/32=${API},::/0=${WEB},fd00::1/128=${DB}`).length, 3);
  });

  it('refuses each bad item, naming it and why', () => {
    const bad: Array<[string, RegExp]> = [
      [`198.18.0.3 ${API}`, /^"198\.18\.0\.3 api[^"]*" is not ADDRESS\[\/PREFIX\]=IDENTITY$/],
      [`web=${API}`, /"web" is not an IP address or subnet/],
      [`198.18.0.256=${API}`, /"198\.18\.0\.256" is not an IP address or subnet/],
      [`=${API}`, /"" is not an IP address or subnet/],
      [`10.0.0.0/8/8=${API}`, /"10\.0\.0\.0\/8\/8" is not an IP address or subnet/],
      [`10.0.0.0/33=${API}`, /\/33 is not a prefix length for IPv4/],
      [`fd00::/129=${API}`, /\/129 is not a prefix length for IPv6/],
      [`10.0.0.0/=${API}`, /\/ is not a prefix length for IPv4/],
      [`10.0.0.0/-1=${API}`, /\/-1 is not a prefix length for IPv4/],
      [`10.0.0.0/1e1=${API}`, /\/1e1 is not a prefix length for IPv4/],
      ['198.18.0.3=', /"" is not an identity name/],
      ['198.18.0.3=api default', /"api default" is not an identity name/],
      ['198.18.0.3=-api.default', /"-api\.default" is not an identity name/],
      ['198.18.0.3=api..default', /"api\.\.default" is not an identity name/],
      ['198.18.0.3=Api.Default.serviceaccount', /"Api\.Default\.serviceaccount" is not an identity name \(a lowercase DNS name\)/],
      [`198.18.0.3=${'a'.repeat(64)}.default`, /is not an identity name/],
      [`198.18.0.3=${'abcdefghi.'.repeat(25)}abcd`, /is not an identity name/], // 254 characters
    ];
    for (const [item, message] of bad) {
      // Among good ones: the whole variable is refused for one bad item.
      assert.throws(() => parseMeshedDestinations(`10.1.0.0/16=${WEB},${item},10.2.0.1=${API}`), (e: unknown) => {
        assert.ok(e instanceof MeshedDestinationsError, `${item}: ${String(e)}`);
        assert.equal(e.code, 'MESH_PROXY_BAD_DESTINATIONS');
        assert.match(e.message, message, item);
        return true;
      });
    }
    // The longest name that fits.
    assert.equal(parseMeshedDestinations(`198.18.0.3=${'abcdefghi.'.repeat(25)}abc`).length, 1);
  });
});

describe('MeshedDestinations.identityOf', () => {
  it('prefers an exact address to a subnet, whichever is listed first', () => {
    for (const t of [table(`10.42.0.0/16=${WEB},10.42.0.7=${API}`), table(`10.42.0.7=${API},10.42.0.0/16=${WEB}`)]) {
      assert.equal(t.identityOf(v4('10.42.0.7')), API);
      assert.equal(t.identityOf(v4('10.42.0.8')), WEB);
    }
    for (const t of [table(`fd6d::/64=${WEB},[fd6d::7]=${API}`), table(`fd6d::7=${API},fd6d::/64=${WEB}`)]) {
      assert.equal(t.identityOf(v6('fd6d::7')), API);
      assert.equal(t.identityOf(v6('fd6d::8')), WEB);
    }
  });

  it('takes the first listed subnet that matches', () => {
    const wide = table(`10.0.0.0/8=${DB},10.42.0.0/16=${WEB}`);
    assert.equal(wide.identityOf(v4('10.42.0.7')), DB);
    const narrow = table(`10.42.0.0/16=${WEB},10.0.0.0/8=${DB}`);
    assert.equal(narrow.identityOf(v4('10.42.0.7')), WEB);
    assert.equal(narrow.identityOf(v4('10.43.0.7')), DB);
  });

  it('takes the first of two rules for the same address', () => {
    assert.equal(table(`198.18.0.3=${API},198.18.0.3=${WEB}`).identityOf(v4('198.18.0.3')), API);
  });

  it('keeps the families apart', () => {
    const t = table(`0.0.0.0/0=${WEB},fd00::/8=${DB}`);
    assert.equal(t.identityOf(v6('fd00::1')), DB);
    assert.equal(t.identityOf(v6('::1')), undefined, 'an IPv4 subnet never matches an IPv6 address');
    assert.equal(t.identityOf(v6('::ffff:10.0.0.1')), undefined, 'not even an IPv4-mapped one');
    assert.equal(t.identityOf(v4('10.0.0.1')), WEB);
    assert.equal(table(`::/0=${DB}`).identityOf(v4('10.0.0.1')), undefined, 'an IPv6 subnet never matches an IPv4 address');
  });

  it('matches an IPv6 subnet written in any form', () => {
    assert.equal(table(`FD6D:0:0:0::/64=${WEB}`).identityOf(v6('fd6d::7')), WEB);
  });

  // Sockets report the canonical form; a rule may be written in any other.
  it('matches an exact IPv6 address written in any form', () => {
    assert.equal(table(`FD6D::7=${API}`).identityOf(v6('fd6d::7')), API);
    assert.equal(table(`fd6d:0:0:0:0:0:0:7=${API}`).identityOf(v6('fd6d::7')), API);
  });

  it('answers undefined for a destination not listed', () => {
    const t = table(`198.18.0.3=${API},10.42.0.0/16=${WEB},fd6d::/64=${DB}`);
    assert.equal(t.identityOf(v4('198.18.0.4')), undefined);
    assert.equal(t.identityOf(v4('10.43.0.1')), undefined);
    assert.equal(t.identityOf(v6('fd6e::1')), undefined);
    assert.equal(table('').identityOf(v4('198.18.0.3')), undefined);
    assert.equal(table(`198.18.0.3=${API}`).identityOf(v4('198.18.0.4')), undefined);
    assert.equal(table(`198.18.0.3=${API},10.42.0.0/16=${WEB}`).size, 2);
  });
});
