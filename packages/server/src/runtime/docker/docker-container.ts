import type Docker from 'dockerode';
import { isContainerGone, translateDockerError } from './docker-errors.js';

/** What both sandbox kinds (agent and docker exec) ask of their container. */

/** True while the container runs; false once it stopped or is gone. */
export async function isContainerRunning(container: Docker.Container): Promise<boolean> {
  try {
    const info = await container.inspect();
    return info.State.Running && !info.State.Restarting;
  } catch (error) {
    if (isContainerGone(error)) return false;
    throw translateDockerError(error, 'inspecting a sandbox');
  }
}

/** Kills and removes the container; no error when it is already gone or going. */
export async function removeContainer(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    // 404: already gone; 409: a removal is already in progress.
    if (status === 404 || status === 409) return;
    throw translateDockerError(error, 'removing a sandbox');
  }
}

/** Kills every process of the container (SIGKILL); no error when it is already stopped or gone. */
export async function killContainer(container: Docker.Container): Promise<void> {
  try {
    await container.kill({ signal: 'SIGKILL' });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    // 404: gone; 409: not running.
    if (status === 404 || status === 409) return;
    throw translateDockerError(error, 'stopping a sandbox');
  }
}
