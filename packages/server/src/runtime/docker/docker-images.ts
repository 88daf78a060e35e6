import Docker from 'dockerode';
import { translateDockerError } from './docker-errors.js';

/** Whether the engine has the image (a tag or an id); engine failures are `runtime_unavailable`. */
export async function dockerImageExists(
  image: string,
  docker: Docker = new Docker(),
): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw translateDockerError(error, 'inspecting a template image');
  }
}
