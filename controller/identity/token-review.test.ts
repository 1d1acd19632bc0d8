// The decision on a TokenReview answer, fed the API server's answers as bytes
// (testdata/), no network.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CaError } from '../../ca/index.js';
import { judgeTokenReview, TokenReviewError, type TokenReviewAnswer } from './token-review.js';

const AUDIENCE = 'identity.mesh.io';
// dist/controller/identity/ → the sources' testdata/.
const testdata = (name: string): string => readFileSync(new URL(`../../../controller/identity/testdata/${name}`, import.meta.url), 'utf8');
const created = (body: string): TokenReviewAnswer => ({ status: 201, body });

/** The service-account answer with its status changed by `edit`. */
function edited(edit: (status: Record<string, unknown>) => void): TokenReviewAnswer {
  const review = JSON.parse(testdata('tokenreview-serviceaccount.json')) as { status: Record<string, unknown> };
  edit(review.status);
  return created(JSON.stringify(review));
}

function refuses(answer: TokenReviewAnswer, code: string, status: number | undefined, message?: RegExp): void {
  assert.throws(
    () => judgeTokenReview(answer, AUDIENCE),
    (e: unknown) => {
      assert.ok(e instanceof TokenReviewError || e instanceof CaError, `unexpected ${String(e)}`);
      assert.equal(e.code, code, e.message);
      // CaErrors get their status from the certify endpoint; ours carry it.
      if (status !== undefined) assert.equal((e as TokenReviewError).status, status);
      if (message !== undefined) assert.match(e.message, message);
      return true;
    },
  );
}

describe('judging a TokenReview answer', () => {
  it("a live pod's service-account token: its subject", () => {
    assert.deepEqual(judgeTokenReview(created(testdata('tokenreview-serviceaccount.json')), AUDIENCE), { subject: 'system:serviceaccount:emojivoto:web' });
  });

  it("the workload's fault (403): not authenticated, not a service account, not for our audience", () => {
    refuses(created(testdata('tokenreview-unauthenticated.json')), 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED', 403, /\[invalid bearer token, service account token has been invalidated\]/);
    refuses(edited((s) => void (s.error = undefined, s.authenticated = false)), 'MESH_IDENTITY_TOKEN_UNAUTHENTICATED', 403, /no reason given/);
    refuses(created(testdata('tokenreview-user.json')), 'MESH_CA_BAD_IDENTITY', undefined, /user "https:\/\/dex\.example\.com#alice", not a service account/);
    // A service account whose name cannot be an identity label: the same rule as certify's.
    refuses(edited((s) => void ((s.user as { username: string }).username = 'system:serviceaccount:emojivoto:web.v2')), 'MESH_CA_BAD_IDENTITY', undefined);
    refuses(edited((s) => void (s.audiences = ['https://kubernetes.default.svc.cluster.local'])), 'MESH_CA_TOKEN_AUDIENCE', undefined, /identity\.mesh\.io/);
    // None returned: by the API's own definition, good for the API server's audience, not ours.
    refuses(edited((s) => void delete s.audiences), 'MESH_CA_TOKEN_AUDIENCE', undefined);
    refuses(edited((s) => void (s.audiences = [])), 'MESH_CA_TOKEN_AUDIENCE', undefined);
  });

  it("ours (503): the controller's credentials refused, the API server failing", () => {
    refuses({ status: 401, body: testdata('status-401-unauthorized.json') }, 'MESH_IDENTITY_REVIEW_CREDENTIALS', 503, /own credentials \(401: Unauthorized\)/);
    refuses({ status: 403, body: testdata('status-403-forbidden.json') }, 'MESH_IDENTITY_REVIEW_CREDENTIALS', 503, /cannot create resource "tokenreviews"/);
    refuses({ status: 500, body: testdata('status-500-internal.json') }, 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /500 \(Internal error occurred: error validating audiences\)/);
    refuses({ status: 503, body: '' }, 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /503 \(no body\)/);
    refuses({ status: 429, body: 'Too many requests, please try again later.\n' }, 'MESH_IDENTITY_REVIEW_UNAVAILABLE', 503, /429/);
  });

  it('a malformed answer is the API server\'s fault (503), never read as "unauthenticated"', () => {
    const bad = 'MESH_IDENTITY_REVIEW_BAD_RESPONSE';
    refuses(created('<html>502 Bad Gateway</html>'), bad, 503);
    refuses(created('{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":"garbage"}'), bad, 503);
    refuses(created(testdata('status-401-unauthorized.json')), bad, 503, /not a TokenReview/);
    refuses(edited((s) => void (s.authenticated = 'true')), bad, 503, /non-boolean/);
    refuses(edited((s) => void (s.user = {})), bad, 503, /username/);
    refuses(edited((s) => void (s.user = 'system:serviceaccount:emojivoto:web')), bad, 503, /username/);
    refuses(edited((s) => void (s.audiences = 'identity.mesh.io')), bad, 503, /audiences/);
    refuses(edited((s) => void ((s.authenticated = false), (s.error = ['no']))), bad, 503, /status\.error/);
  });
});
