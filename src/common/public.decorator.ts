import { SetMetadata } from '@nestjs/common';

/** Metadata key of `@Public()`, read by the auth layer's key hook and guard. */
export const IS_PUBLIC = 'kvchat:public';

/**
 * Marks a controller or route as reachable without an API key (health, metrics). It lives in common, not
 * in auth, so that modules below auth (observability's `/metrics`) can mark their routes.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
